//! The words of Chat4All: message and conversation ids, platforms and
//! recipients, delivery statuses, and the delivery-state machine every
//! backend applies transitions through.
//!
//! Strings live only at the edges (proto, SQL, JSON); inside, ids are
//! newtypes and statuses are an enum. Conversions from and to the generated
//! proto types sit in [`convert`].

pub mod convert;
mod ids;
pub mod json_struct;
mod platform;
pub mod state_machine;
mod status;
mod time;

pub use ids::{ConversationId, IdError, MessageId};
pub use platform::{Platform, Recipient, RecipientError, UnknownPlatform};
pub use state_machine::{Decision, Timeline, decide};
pub use status::DeliveryStatus;
pub use time::Timestamp;

/// Where a message came from: the API, or a platform user (`vendor:<name>`).
pub const SOURCE_API: &str = "api";
