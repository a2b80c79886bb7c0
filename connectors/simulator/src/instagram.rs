//! Instagram messaging in the simulator: a [`Flavour`] of the shared Meta
//! messaging module. Webhooks go to the `instagram` object; a send is
//! followed by its echo and a `read` naming its mid. Instagram has no
//! delivery receipts.

use crate::meta_messaging::Flavour;

pub(crate) const PLATFORM: &str = "instagram";

pub(crate) static FLAVOUR: Flavour = Flavour {
    platform: PLATFORM,
    object: "instagram",
    delivery_receipts: false,
    read_names_mid: true,
    requires_messaging_type: false,
    config: |shared| &shared.instagram,
};
