//! What a secret may be called and hold, what kind it is, and how it is shown.

/// A name's longest length in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// A value's largest size in bytes.
pub const MAX_VALUE_BYTES: usize = 32 * 1024;
/// Secrets of one scope (a user's own, or one chat's overrides).
pub const MAX_SECRETS_PER_SCOPE: usize = 64;
/// The values of one scope together, so that a chat's environment (a user's and a chat's
/// scope) stays well below what `execve` accepts.
pub const MAX_SCOPE_BYTES: usize = 256 * 1024;

/// The names that make a user's turns use their own model credentials.
pub const MODEL_CREDENTIALS: [&str; 4] =
    ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL"];
/// Of those, the ones that are a key the model API accepts.
pub const MODEL_KEYS: [&str; 3] =
    ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"];

/// Names the sandbox, the shell, the dynamic linker or the CLI's set-up own. Compared
/// upper-cased, so `path` and `http_proxy` are refused as well.
const RESERVED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "OLDPWD",
    "TERM",
    "TMPDIR",
    "HOSTNAME",
    "MAIL",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "NODE_OPTIONS",
    "NODE_PATH",
    "IS_SANDBOX",
    "CLAUDE_CONFIG_DIR",
];

/// Prefixes of reserved names: the dynamic linker's, agentbox's own, and the CLI's and the
/// model API's settings, which the chat's settings decide (the model credentials excepted).
const RESERVED_PREFIXES: &[&str] =
    &["LD_", "AGENTBOX_", "CLAUDE_CODE_", "ANTHROPIC_", "BASH_FUNC_"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "a secret's name must be an environment variable name: letters, digits and `_`, not \
         starting with a digit"
    )]
    Invalid,
    #[error("a secret's name is at most {MAX_NAME_LEN} bytes")]
    TooLong,
    #[error("`{0}` is reserved: the sandbox sets it itself")]
    Reserved(String),
}

/// Check a name: `^[A-Za-z_][A-Za-z0-9_]*$`, bounded, not reserved.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(NameError::Invalid);
    }
    if MODEL_CREDENTIALS.contains(&name) {
        return Ok(());
    }
    let upper = name.to_ascii_uppercase();
    if RESERVED.contains(&upper.as_str())
        || RESERVED_PREFIXES.iter().any(|prefix| upper.starts_with(prefix))
    {
        return Err(NameError::Reserved(name.to_owned()));
    }
    Ok(())
}

/// What a secret is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// One of [`MODEL_CREDENTIALS`]: the user's turns use it instead of the server's.
    ModelCredential,
    /// An environment variable of the user's sandbox processes.
    Environment,
}

impl SecretKind {
    pub fn of(name: &str) -> Self {
        if MODEL_CREDENTIALS.contains(&name) { Self::ModelCredential } else { Self::Environment }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ModelCredential => "model_credential",
            Self::Environment => "environment",
        }
    }
}

/// A value as it may be shown: a short head and tail of long values (`sk-…abcd`), less of
/// shorter ones, nothing of short ones, never enough to be useful.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        0..=7 => (0, 0),
        8..=15 => (0, 2),
        _ => (3, 4),
    };
    let mut shown: String = chars[..head].iter().collect();
    shown.push('…');
    shown.extend(&chars[n - tail..]);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_environment_variable_names() {
        for ok in [
            "MY_SECRET",
            "_x",
            "GITHUB_TOKEN",
            "a1",
            "ANTHROPIC_API_KEY",
            "CLAUDE_CODE_OAUTH_TOKEN",
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "Ä", "A=B", "A\0"] {
            assert_eq!(check_name(bad), Err(NameError::Invalid), "{bad:?}");
        }
        assert_eq!(check_name(&"A".repeat(MAX_NAME_LEN)), Ok(()));
        assert_eq!(check_name(&"A".repeat(MAX_NAME_LEN + 1)), Err(NameError::TooLong));
    }

    #[test]
    fn reserved_names_are_refused_in_any_case() {
        for reserved in [
            "PATH",
            "path",
            "HOME",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "http_proxy",
            "HTTPS_PROXY",
            "AGENTBOX_SANDBOX",
            "CLAUDE_CODE_SHELL",
            "ANTHROPIC_MODEL",
            "IS_SANDBOX",
            "BASH_ENV",
            "NODE_OPTIONS",
        ] {
            assert!(matches!(check_name(reserved), Err(NameError::Reserved(_))), "{reserved}");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(SecretKind::of("ANTHROPIC_BASE_URL"), SecretKind::ModelCredential);
        assert_eq!(SecretKind::of("GITHUB_TOKEN"), SecretKind::Environment);
        assert_eq!(SecretKind::ModelCredential.as_str(), "model_credential");
    }

    #[test]
    fn masks_show_little() {
        assert_eq!(mask("sk-ant-api03-0123456789abcd"), "sk-…abcd");
        assert_eq!(mask("12345678"), "…78");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask(""), "…");
        assert_eq!(mask("ääääääääääääääääöü"), "äää…ääöü");
    }
}
