//! How an item is written as a stream entry and read back: field `k` says what it is
//! (`e` a durable event, `t` a transient one, `lag` a resynchronisation marker), field `d`
//! holds the event as JSON.

use agentbox_protocol::{ChatEvent, TransientEvent};
use redis::streams::StreamId;

use crate::{Item, Published};

const KIND: &str = "k";
const DATA: &str = "d";

/// One entry's fields, encoded by the publisher's caller.
#[derive(Debug)]
pub(crate) struct Entry {
    kind: &'static str,
    data: Option<String>,
}

impl Entry {
    pub(crate) fn event(event: &ChatEvent) -> serde_json::Result<Self> {
        Ok(Self { kind: "e", data: Some(serde_json::to_string(event)?) })
    }

    pub(crate) fn transient(event: &TransientEvent) -> serde_json::Result<Self> {
        Ok(Self { kind: "t", data: Some(serde_json::to_string(event)?) })
    }

    /// "You may have missed events: read the log."
    pub(crate) fn lagged() -> Self {
        Self { kind: "lag", data: None }
    }

    /// Whether this is a logged event (what the counters count).
    pub(crate) fn is_durable(&self) -> bool {
        self.kind == "e"
    }

    /// Append the field-value pairs to an `XADD`.
    pub(crate) fn write(&self, command: &mut redis::Cmd) {
        command.arg(KIND).arg(self.kind);
        if let Some(data) = &self.data {
            command.arg(DATA).arg(data);
        }
    }
}

/// The item an entry stands for. An entry this version cannot read (written by another
/// one, or damaged) becomes `Lagged`, so its subscribers read the log instead.
pub(crate) fn decode(entry: &StreamId) -> Item {
    let kind = entry.get::<String>(KIND);
    let data = entry.get::<Vec<u8>>(DATA);
    let item = match (kind.as_deref(), data) {
        (Some("e"), Some(data)) => {
            serde_json::from_slice(&data).map(|event| Item::Event(Published::new(event))).ok()
        }
        (Some("t"), Some(data)) => {
            serde_json::from_slice(&data).map(|event| Item::Transient(Published::new(event))).ok()
        }
        (Some("lag"), _) => Some(Item::Lagged),
        _ => None,
    };
    item.unwrap_or_else(|| {
        tracing::warn!(id = %entry.id, "Redis: a stream entry could not be read; subscribers go to the log");
        Item::Lagged
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbox_protocol::EventPayload;
    use uuid::Uuid;

    fn entry_of(entry: &Entry) -> StreamId {
        let mut map = std::collections::HashMap::new();
        map.insert(KIND.to_owned(), redis::Value::BulkString(entry.kind.as_bytes().to_vec()));
        if let Some(data) = &entry.data {
            map.insert(DATA.to_owned(), redis::Value::BulkString(data.as_bytes().to_vec()));
        }
        StreamId { id: "1-0".into(), map, ..StreamId::default() }
    }

    #[test]
    fn entries_read_back_as_what_was_written() {
        let event = ChatEvent {
            seq: 7,
            message_id: Uuid::new_v4(),
            parent_tool_use_id: Some("tool".into()),
            created_at: chrono::Utc::now(),
            payload: EventPayload::AssistantText { text: "hé \u{0} \n".into() },
        };
        let Item::Event(back) = decode(&entry_of(&Entry::event(&event).unwrap())) else {
            panic!("not an event")
        };
        assert!(back == event);
        let delta =
            TransientEvent::AssistantTextDelta { message_id: Uuid::nil(), text: "x".into() };
        let Item::Transient(back) = decode(&entry_of(&Entry::transient(&delta).unwrap())) else {
            panic!("not transient")
        };
        assert!(back == delta);
        assert!(matches!(decode(&entry_of(&Entry::lagged())), Item::Lagged));
    }

    #[test]
    fn an_unreadable_entry_lags() {
        let entry = Entry { kind: "e", data: Some("{not json".into()) };
        assert!(matches!(decode(&entry_of(&entry)), Item::Lagged));
        assert!(matches!(decode(&entry_of(&Entry { kind: "?", data: None })), Item::Lagged));
    }
}
