//! Conversions between the domain words and the generated proto types.

use chat4all_proto::v1 as pb;

use crate::{DeliveryStatus, Recipient, Timeline, Timestamp};

impl From<&Recipient> for pb::Recipient {
    fn from(r: &Recipient) -> Self {
        pb::Recipient {
            platform: r.platform.as_str().to_owned(),
            id: r.id.clone(),
        }
    }
}

/// The timeline as the API shows it: states reached, in state order.
pub fn timeline_to_proto(timeline: &Timeline) -> Vec<pb::StateTimestamp> {
    timeline
        .reached()
        .map(|(status, at)| pb::StateTimestamp {
            status: status.to_proto().into(),
            at: Some(at.into()),
        })
        .collect()
}

/// The timeline of a message record.
pub fn timeline_from_proto(states: &[pb::StateTimestamp]) -> Timeline {
    let mut t = Timeline::default();
    for s in states {
        if let (Some(status), Some(at)) = (DeliveryStatus::from_proto(s.status), s.at) {
            t.set(status, Timestamp::from(at));
        }
    }
    t
}

/// An optional proto timestamp, or now.
pub fn timestamp_or_now(t: Option<prost_types::Timestamp>) -> Timestamp {
    t.map_or_else(Timestamp::now, Timestamp::from)
}
