//! Telegram's webhook updates into platform events, and the window that
//! drops redelivered ones.
//!
//! One POST carries one `Update`. A `message` with text becomes an inbound
//! message: the chat is the conversation, and its id is
//! `<chat_id>:<message_id>` because Telegram numbers messages per chat.
//! Other updates (edits, callbacks, member changes, media without text) are
//! skipped and counted, not refused: Telegram retries a refused update and
//! holds every later one back until it goes through.
//!
//! Telegram redelivers an update it believes unanswered, with the same
//! `update_id`. The window remembers the most recent ids (bounded, oldest
//! forgotten first) so a repeat is answered 200 and dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use chat4all_adapter::WebhookParseError;
use chat4all_proto::v1 as pb;
use pb::platform_event::Event;
use serde::Deserialize;

use crate::PLATFORM;
use crate::client::platform_message_id;

/// A Telegram id: a number on the wire, a string to us. A string is taken
/// too, so an id never fails to parse for its spelling.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Id {
    Number(i64),
    Text(String),
}

impl Id {
    /// The id as text.
    pub fn into_string(self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(s) => s,
        }
    }
}

/// Just enough of an update to find its id (used to forget a refused one).
#[derive(Debug, Deserialize)]
struct UpdateId {
    update_id: i64,
}

#[derive(Debug, Deserialize)]
struct Update {
    update_id: i64,
    #[serde(default)]
    message: Option<Message>,
}

#[derive(Debug, Deserialize)]
struct Message {
    message_id: i64,
    #[serde(default)]
    from: Option<User>,
    chat: Chat,
    date: i64,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: Id,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: Id,
    #[serde(default)]
    title: Option<String>,
}

/// One update, parsed.
#[derive(Debug, PartialEq)]
pub struct ParsedUpdate {
    pub update_id: i64,
    /// `None` for an update we do not carry.
    pub event: Option<pb::PlatformEvent>,
}

fn skipped(reason: &'static str) {
    metrics::counter!("chat4all_telegram_webhook_skipped_total", "reason" => reason).increment(1);
}

/// The `update_id` of a body, if it has one.
pub fn update_id(body: &[u8]) -> Option<i64> {
    serde_json::from_slice::<UpdateId>(body).ok().map(|u| u.update_id)
}

/// Parses one webhook body (already authenticated).
pub fn parse(body: &[u8]) -> Result<ParsedUpdate, WebhookParseError> {
    let update: Update = serde_json::from_slice(body)?;
    let Some(message) = update.message else {
        skipped("other_update");
        return Ok(ParsedUpdate {
            update_id: update.update_id,
            event: None,
        });
    };
    let Some(text) = message.text else {
        skipped("other_message_type");
        return Ok(ParsedUpdate {
            update_id: update.update_id,
            event: None,
        });
    };
    let chat_id = message.chat.id.into_string();
    // A channel post has no `from`: the chat itself speaks.
    let (sender_id, sender_name) = match message.from {
        Some(user) => {
            let name = match (user.first_name.is_empty(), user.last_name) {
                (false, Some(last)) if !last.is_empty() => format!("{} {last}", user.first_name),
                (false, _) => user.first_name,
                (true, _) => user.username.unwrap_or_default(),
            };
            (user.id.into_string(), name)
        }
        None => (chat_id.clone(), message.chat.title.unwrap_or_default()),
    };
    let at = chat4all_adapter::time::refine_whole_seconds(message.date, std::time::SystemTime::now());
    Ok(ParsedUpdate {
        update_id: update.update_id,
        event: Some(pb::PlatformEvent {
            event: Some(Event::Inbound(pb::InboundMessage {
                platform: PLATFORM.to_owned(),
                external_message_id: platform_message_id(&chat_id, message.message_id),
                vendor_channel_id: chat_id,
                sender_id,
                text,
                at: Some(at),
                sender_name,
                from_us: false,
            })),
            traceparent: String::new(),
            ..Default::default()
        }),
    })
}

/// The most recent `update_id`s seen, at most `capacity` of them.
///
/// Per adapter pod and in memory, and safe so with replicas: it only saves
/// work. An update redelivered to another pod, or after a restart, passes
/// it and is stored once anyway, because the router's store de-duplicates
/// inbound on `(vendor, external_message_id)` (24 h by default), and the
/// external id of a Telegram message (`chat:message_id`) does not depend on
/// the update that carried it. An update whose events were not queued is
/// forgotten ([`UpdateWindow::forget`]), so its redelivery is not dropped.
/// One gap remains: a redelivery arriving while the first delivery is
/// still in flight is answered 200 and dropped; should the first then fail
/// to queue, Telegram has been told both succeeded. Closing it needs the
/// adapter kit to hold the redelivery until the first settles.
#[derive(Debug)]
pub struct UpdateWindow {
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<i64>,
    order: VecDeque<i64>,
}

impl UpdateWindow {
    /// A window remembering `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Remembers `id`; `false` when it was seen already (a redelivery).
    pub fn first_sighting(&self, id: i64) -> bool {
        let mut seen = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.ids.insert(id) {
            return false;
        }
        seen.order.push_back(id);
        while seen.order.len() > self.capacity {
            if let Some(old) = seen.order.pop_front() {
                seen.ids.remove(&old);
            }
        }
        true
    }

    /// Forgets `id`: its update was not kept, and its retry must count.
    pub fn forget(&self, id: i64) {
        let mut seen = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.ids.remove(&id) {
            seen.order.retain(|&x| x != id);
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .order
            .len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn inbound(parsed: &ParsedUpdate) -> &pb::InboundMessage {
        match parsed.event.as_ref().and_then(|e| e.event.as_ref()) {
            Some(Event::Inbound(m)) => m,
            other => panic!("not inbound: {other:?}"),
        }
    }

    #[test]
    fn a_text_message_becomes_inbound() {
        let body = serde_json::to_vec(&json!({"update_id": 900_001, "message": {
            "message_id": 17,
            "from": {"id": 4242, "is_bot": false, "first_name": "Anna", "last_name": "K", "username": "annak"},
            "chat": {"id": 4242, "first_name": "Anna", "type": "private"},
            "date": 1_700_000_100, "text": "Xin chào"}}))
        .unwrap();
        let parsed = parse(&body).unwrap();
        assert_eq!(parsed.update_id, 900_001);
        let m = inbound(&parsed);
        assert_eq!(m.platform, "telegram");
        assert_eq!(m.vendor_channel_id, "4242");
        assert_eq!(m.sender_id, "4242");
        assert_eq!(m.sender_name, "Anna K");
        assert_eq!(m.external_message_id, "4242:17");
        assert_eq!(m.text, "Xin chào");
        assert_eq!(
            m.at,
            Some(chat4all_proto::Timestamp {
                seconds: 1_700_000_100,
                nanos: 0
            })
        );
    }

    #[test]
    fn names_fall_back_to_the_username_and_groups_keep_the_sender() {
        let body = serde_json::to_vec(&json!({"update_id": 2, "message": {
            "message_id": 5, "from": {"id": 7, "is_bot": false, "first_name": "", "username": "ghost"},
            "chat": {"id": -100_555, "type": "supergroup", "title": "Team"}, "date": 1, "text": "hi"}}))
        .unwrap();
        let parsed = parse(&body).unwrap();
        let m = inbound(&parsed);
        assert_eq!(
            (
                m.vendor_channel_id.as_str(),
                m.sender_id.as_str(),
                m.sender_name.as_str()
            ),
            ("-100555", "7", "ghost")
        );
        assert_eq!(m.external_message_id, "-100555:5");
    }

    #[test]
    fn other_updates_are_skipped_and_garbage_refused() {
        let edited =
            br#"{"update_id": 3, "edited_message": {"message_id": 1, "chat": {"id": 1}, "date": 1}}"#;
        assert_eq!(
            parse(edited).unwrap(),
            ParsedUpdate {
                update_id: 3,
                event: None
            }
        );
        let photo =
            br#"{"update_id": 4, "message": {"message_id": 1, "chat": {"id": 1}, "date": 1, "photo": []}}"#;
        assert_eq!(parse(photo).unwrap().event, None);
        assert!(matches!(parse(b"{nope"), Err(WebhookParseError::Json(_))));
        assert!(matches!(
            parse(br#"{"message": {}}"#),
            Err(WebhookParseError::Json(_))
        ));
        assert_eq!(update_id(edited), Some(3));
    }

    #[test]
    fn the_window_drops_repeats_and_forgets_the_oldest() {
        let window = UpdateWindow::new(2);
        assert!(window.first_sighting(1));
        assert!(!window.first_sighting(1));
        assert!(window.first_sighting(2));
        assert!(window.first_sighting(3));
        assert_eq!(window.len(), 2);
        assert!(window.first_sighting(1), "1 fell out of the window");
        window.forget(1);
        assert!(window.first_sighting(1), "a forgotten id counts again");
    }
}
