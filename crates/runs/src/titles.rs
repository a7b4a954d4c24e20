//! A chat's title after its first turn, and the one-line text the chat list shows.
//!
//! The title is made from the first prompt (or, when that has no words, from the reply):
//! its first line with words, Markdown marks taken off, cut at a word before 60 characters.
//! No second call to the model: it would cost the user money and a round trip for every
//! chat, and fail with the model (a chat whose first turn failed still gets a name). The
//! store replaces only the default title, so a rename always wins, even one made while the
//! turn ran.

use agentbox_protocol::api::Role;
use agentbox_protocol::event::EventPayload;
use agentbox_store::{Store, TitleSource};
use uuid::Uuid;

/// The longest generated title, in characters (before the ellipsis).
const MAX_TITLE_CHARS: usize = 60;

/// Name the chat after a turn, if it still has the default title. Failures are logged: a
/// chat without a generated title is no reason to fail its turn.
pub async fn name_after_turn(store: &Store, chat_id: Uuid) {
    if let Err(err) = try_name(store, chat_id).await {
        tracing::warn!(%chat_id, %err, "could not name the chat");
    }
}

async fn try_name(store: &Store, chat_id: Uuid) -> agentbox_store::Result<()> {
    let Some(chat) = store.chat_unscoped(chat_id).await? else { return Ok(()) };
    if chat.title_source != TitleSource::Default {
        return Ok(());
    }
    let messages = store.messages(chat_id).await?;
    let text_of = |role: Role| {
        messages.iter().filter(|m| m.role == role).flat_map(|m| &m.content).find_map(|event| {
            match &event.payload {
                EventPayload::UserText { text } | EventPayload::AssistantText { text } => {
                    Some(text.as_str())
                }
                _ => None,
            }
        })
    };
    let prompt = text_of(Role::User).unwrap_or_default();
    let reply = text_of(Role::Assistant).unwrap_or_default();
    if let Some(title) = title_from(prompt, reply)
        && store.set_generated_title(chat_id, &title).await?
    {
        tracing::debug!(%chat_id, %title, "chat named");
    }
    Ok(())
}

/// A title from the first prompt, or from the reply when the prompt has no words.
pub fn title_from(prompt: &str, reply: &str) -> Option<String> {
    title_of(prompt).or_else(|| title_of(reply))
}

fn title_of(text: &str) -> Option<String> {
    let line =
        text.lines().filter(|line| !line.trim_start().starts_with("```")).find_map(|line| {
            let line = strip_marks(line);
            line.chars().any(char::is_alphanumeric).then_some(line)
        })?;
    let mut title = without_end_punctuation(&shorten(&line, MAX_TITLE_CHARS)).to_owned();
    if let Some(first) = title.chars().next()
        && first.is_lowercase()
    {
        title = first.to_uppercase().chain(title.chars().skip(1)).collect();
    }
    Some(title)
}

/// A line without Markdown's heading, quote, list and emphasis marks, on single spaces.
fn strip_marks(line: &str) -> String {
    let line = line.trim_start_matches(|c: char| c.is_whitespace() || "#>-+*".contains(c));
    let line = line.replace(['*', '`'], "");
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text on one line, at most `max` characters: cut at the last space before the limit
/// (or at the limit in a long word), with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max).collect();
    let at_word = match cut.rfind(' ') {
        Some(space) if space > max / 2 => &cut[..space],
        _ => &cut,
    };
    format!("{}…", without_end_punctuation(at_word))
}

/// Punctuation that would end a title oddly ("Fix this:") taken off its end.
fn without_end_punctuation(text: &str) -> &str {
    text.trim_end_matches(|c: char| ".,;:-–—".contains(c) || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_the_prompts_first_line_cleaned() {
        assert_eq!(title_from("fix the login bug", "").unwrap(), "Fix the login bug");
        assert_eq!(
            title_from("## Why does   `cargo test` fail?\n\nHere is the log: ...", "").unwrap(),
            "Why does cargo test fail?"
        );
        assert_eq!(title_from("\n\n> **Refactor** app.py:\n", "").unwrap(), "Refactor app.py");
        assert_eq!(title_from("- add a README.", "").unwrap(), "Add a README");
    }

    #[test]
    fn a_long_prompt_is_cut_at_a_word() {
        let title = title_from(
            "please write a function that parses the configuration file and validates every field",
            "",
        )
        .unwrap();
        assert_eq!(title, "Please write a function that parses the configuration file…");
        assert!(title.chars().count() <= MAX_TITLE_CHARS + 1);
        let word = "x".repeat(100);
        assert_eq!(title_from(&word, "").unwrap().chars().count(), MAX_TITLE_CHARS + 1);
    }

    #[test]
    fn a_prompt_without_words_falls_back_to_the_reply() {
        assert_eq!(
            title_from("```\n{}\n```\n???", "sure — here it is").unwrap(),
            "Sure — here it is"
        );
        assert_eq!(title_from("", "").as_deref(), None);
        assert_eq!(title_from("!!!", "...").as_deref(), None);
    }

    #[test]
    fn text_on_one_line() {
        assert_eq!(shorten("a\n\n b\tc", 100), "a b c");
        assert_eq!(shorten("ünïcödé wörds everywhere", 12), "ünïcödé…");
        assert_eq!(shorten("A whole sentence.", 100), "A whole sentence.");
        assert_eq!(shorten("cut here: and more", 11), "cut here…");
    }
}
