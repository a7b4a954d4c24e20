//! The rules for what an account may be made of: emails, passwords and usernames.
//!
//! An email is accepted only in the form the HTML standard calls a "valid email address"
//! (what `<input type="email">` accepts), with its domain made of at least two labels:
//! `local@label.label`, the local part from letters, digits and ``.!#$%&'*+/=?^_`{|}~-``
//! (no leading, trailing or doubled dot), each label 1-63 letters, digits or inner hyphens;
//! at most 64 bytes before the `@` and 254 in all. So a second `@`, quotes, spaces, NUL and
//! other control bytes, `<`/`>` markup and address literals are all refused, where the
//! full RFC 5322 grammar would allow some of them and no mailbox needs them.

use crate::error::ApiError;

const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";

/// Passwords anyone tries first; refused whatever their length.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "letmein1",
    "abc12345",
    "11111111",
    "00000000",
    "admin123",
    "passw0rd",
];

/// The email as it is stored (trimmed; the store lower-cases it), or `invalid_email`.
pub fn email(raw: &str) -> Result<&str, ApiError> {
    let email = raw.trim();
    if valid_email(email) {
        Ok(email)
    } else {
        Err(ApiError::unprocessable(
            "invalid_email",
            "That is not a valid email address: use the form name@example.com, with letters, \
             digits and . _ + - before the @ and a domain such as example.com after it.",
        ))
    }
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254 && valid_local(local) && valid_domain(domain)
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `invalid_password` with the rule that was broken, or nothing.
pub fn password(password: &str, email: &str) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        Err(ApiError::unprocessable(
            "invalid_password",
            format!("The password {why}. Use at least 8 characters, for example a few words."),
        ))
    };
    let length = password.chars().count();
    if length < 8 {
        return refuse("is too short");
    }
    if length > 1024 {
        return refuse("is longer than 1024 characters");
    }
    if password.chars().any(char::is_control) {
        return refuse("contains a control character (such as a NUL or a line break)");
    }
    if password.trim().is_empty() {
        return refuse("is only blanks");
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return refuse("is one character repeated");
    }
    let lower = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || (!local.is_empty() && lower == local) {
        return refuse("is the email address");
    }
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return refuse("is one of the most common passwords");
    }
    Ok(())
}

/// `invalid_username`, or nothing.
pub fn username(name: Option<&str>) -> Result<(), ApiError> {
    match name {
        Some(name)
            if name.trim().is_empty()
                || name.chars().count() > 64
                || name.chars().any(char::is_control) =>
        {
            Err(ApiError::unprocessable(
                "invalid_username",
                "The username must be 1 to 64 characters long, without control characters.",
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_in_the_standard_form_are_accepted() {
        for good in [
            "a@example.com",
            "First.Last+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "x_y-z@a-b.example",
            "  padded@example.com  ",
        ] {
            assert!(email(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn other_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "x@b@c.example",
            "@example.com",
            "a@",
            "a@localhost",
            "a@.example.com",
            "a@example..com",
            "a@-example.com",
            "a@example-.com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "a\u{0}b@example.com",
            "a@exa\u{0}mple.com",
            "a b@example.com",
            "<script>@example.com",
            "a@<b>.com",
            "\"quoted\"@example.com",
            "a@[127.0.0.1]",
            "ü@example.com",
            "a@example.com\u{0}",
        ] {
            let err = email(bad).map(|_| ()).unwrap_err();
            assert_eq!(err.code, "invalid_email", "{bad:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(email(&long_local).is_err());
        let long = format!("a@{}.com", vec!["b".repeat(63); 4].join("."));
        assert!(email(&long).is_err(), "longer than 254");
    }

    #[test]
    fn passwords_follow_the_rules_with_a_reason() {
        assert!(password("correct horse", "a@example.com").is_ok());
        for (bad, why) in [
            ("short", "too short"),
            ("aaaaaaaaaaa", "repeated"),
            ("          ", "blanks"),
            ("with\u{0}nul bytes", "control"),
            ("Password123", "common"),
            ("someone1@example.com", "email"),
            ("someone1", "email"),
        ] {
            let err = password(bad, "someone1@example.com").map(|_| ()).unwrap_err();
            assert_eq!(err.code, "invalid_password");
            assert!(err.message.contains(why), "{bad:?}: {}", err.message);
        }
        assert!(password(&"x".repeat(1025), "a@example.com").is_err());
    }
}
