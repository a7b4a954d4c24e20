//! What the chat list asks for (filters and a search), and the one splitting of a search
//! into words that both backends' full-text queries are built from.

/// Which of a user's chats to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatQuery {
    /// Only chats whose title contains this text or whose prompts and replies contain
    /// every word of it (a word also matches as the start of a longer one).
    pub search: Option<String>,
    /// `Some(true)`: pinned chats only; `Some(false)`: unpinned only; `None`: both.
    pub pinned: Option<bool>,
    /// `Some(true)`: archived chats only; `Some(false)`: the others; `None`: both.
    pub archived: Option<bool>,
}

/// The text a title is searched for: lower-cased, trimmed, without NUL (which no stored
/// text holds: PostgreSQL refuses it); `None` when nothing is left, which lists every chat.
pub(crate) fn text(search: Option<&str>) -> Option<String> {
    let text = search?.replace('\0', "").trim().to_lowercase();
    (!text.is_empty()).then_some(text)
}

/// The words of a search: runs of letters and digits, lower-cased. Everything else
/// separates words, as SQLite's `unicode61` tokenizer does, so no character of the user's
/// text reaches either backend's query syntax.
pub(crate) fn words(search: &str) -> Vec<String> {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// An FTS5 query: every word as a prefix (`"word"*`), all of them required.
pub(crate) fn fts5_query(words: &[String]) -> Option<String> {
    (!words.is_empty())
        .then(|| words.iter().map(|word| format!("\"{word}\"*")).collect::<Vec<_>>().join(" "))
}

/// A PostgreSQL `tsquery`: every word as a prefix (`word:*`), all of them required.
pub(crate) fn tsquery(words: &[String]) -> Option<String> {
    (!words.is_empty())
        .then(|| words.iter().map(|word| format!("{word}:*")).collect::<Vec<_>>().join(" & "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_keeps_only_words() {
        let found = words(r#"  Fix "the" LOGIN-bug*: (NEAR) ' OR 1=1 -- ünïcode  "#);
        assert_eq!(found, ["fix", "the", "login", "bug", "near", "or", "1", "1", "ünïcode"]);
        assert_eq!(fts5_query(&found[..2]).unwrap(), r#""fix"* "the"*"#);
        assert_eq!(tsquery(&found[..2]).unwrap(), "fix:* & the:*");
    }

    #[test]
    fn blank_searches_list_everything() {
        assert_eq!(text(Some(" \0 ")), None);
        assert_eq!(text(None), None);
        assert_eq!(text(Some(" Ab\0c ")).as_deref(), Some("abc"));
    }

    #[test]
    fn punctuation_alone_is_no_query() {
        assert!(words("*** ' \" ()").is_empty());
        assert_eq!(fts5_query(&[]), None);
        assert_eq!(tsquery(&[]), None);
    }
}
