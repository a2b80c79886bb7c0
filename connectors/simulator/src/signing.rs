//! Webhook signatures as the platforms compute them. Written here rather than
//! borrowed from the adapter kit on purpose: the simulator is the other side
//! of the contract, and a shared bug would pass on both sides.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; the fallback is unreachable but keeps
    // the simulator from panicking should that rule ever change.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Meta's `X-Hub-Signature-256` value: `sha256=<hex>`.
pub fn meta_signature(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(app_secret.as_bytes(), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_vector() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(meta_signature("Jefe", b"what do ya want for nothing?").starts_with("sha256=5bdcc146"));
    }
}
