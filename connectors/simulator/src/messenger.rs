//! Facebook Messenger in the simulator: a [`Flavour`] of the shared Meta
//! messaging module. Webhooks go to the `page` object; a send is followed
//! by its echo, a `delivery` watermark (with `mids` only sometimes) and a
//! `read` watermark.

use crate::meta_messaging::Flavour;

pub(crate) const PLATFORM: &str = "messenger";

pub(crate) static FLAVOUR: Flavour = Flavour {
    platform: PLATFORM,
    object: "page",
    delivery_receipts: true,
    read_names_mid: false,
    requires_messaging_type: true,
    config: |shared| &shared.messenger,
};
