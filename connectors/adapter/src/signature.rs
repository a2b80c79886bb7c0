//! Webhook authentication, checked on the raw body bytes before anything
//! parses them: a forged or altered payload must never reach a parser.
//!
//! Platforms sign in one of two ways, both described here as data
//! ([`SignatureScheme`]) rather than code each platform writes, so the
//! constant-time comparison exists exactly once:
//! - an HMAC-SHA256 of the body in a header (Meta's `X-Hub-Signature-256:
//!   sha256=<hex>`, Chotot's `X-Chotot-Signature`);
//! - a shared token echoed in a header (Telegram's
//!   `X-Telegram-Bot-Api-Secret-Token`).

use axum::http::HeaderMap;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::Secret;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a webhook's signature was refused. `Missing` is a 401 (who are you?),
/// the others a 403 (you are not who you say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is not of the expected form")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// How a platform proves that a webhook came from it.
#[derive(Debug, Clone)]
pub enum SignatureScheme {
    /// `<header>: <prefix><lowercase hex HMAC-SHA256(secret, raw body)>`.
    HmacSha256Hex {
        /// Header name, lowercase.
        header: &'static str,
        /// What precedes the hex digest (`sha256=` for Meta, may be empty).
        prefix: &'static str,
        secret: Secret,
    },
    /// `<header>: <token>`.
    SharedToken {
        /// Header name, lowercase.
        header: &'static str,
        token: Secret,
    },
}

impl SignatureScheme {
    /// Meta's scheme (WhatsApp, Messenger, Instagram): `X-Hub-Signature-256`.
    pub fn meta(app_secret: Secret) -> Self {
        Self::HmacSha256Hex {
            header: "x-hub-signature-256",
            prefix: "sha256=",
            secret: app_secret,
        }
    }

    /// Checks `body` against the signature in `headers`, in constant time.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
        match self {
            Self::HmacSha256Hex {
                header,
                prefix,
                secret,
            } => {
                let value = header_value(headers, header)?;
                let hex_digest = value.strip_prefix(prefix).ok_or(SignatureError::Malformed)?;
                verify_hmac_sha256_hex(secret, body, hex_digest)
            }
            Self::SharedToken { header, token } => {
                let value = header_value(headers, header)?;
                if constant_time_eq(value.as_bytes(), token.expose().as_bytes()) {
                    Ok(())
                } else {
                    Err(SignatureError::Mismatch)
                }
            }
        }
    }
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, SignatureError> {
    let value = headers.get(name).ok_or(SignatureError::Missing)?;
    let value = value.to_str().map_err(|_| SignatureError::Malformed)?.trim();
    if value.is_empty() {
        Err(SignatureError::Missing)
    } else {
        Ok(value)
    }
}

/// Checks a hex HMAC-SHA256 digest of `body` under `secret`. The digest is
/// decoded first and compared as bytes by the MAC itself, in constant time;
/// upper- and lowercase hex are both accepted.
pub fn verify_hmac_sha256_hex(secret: &Secret, body: &[u8], hex_digest: &str) -> Result<(), SignatureError> {
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let mut mac = new_mac(secret);
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// The lowercase hex HMAC-SHA256 of `body`: what a platform puts in its
/// signature header (used by tests and by anything that signs for us).
pub fn sign_hmac_sha256_hex(secret: &Secret, body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn new_mac(secret: &Secret) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so this
    // never fails; the match keeps a future change of that rule from
    // panicking at run time.
    match HmacSha256::new_from_slice(secret.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => HmacSha256::new(&Default::default()),
    }
}

/// Compares two byte strings without an early exit on the first difference.
/// The length is not secret (a token's length is in its documentation).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        let digest = sign_hmac_sha256_hex(&Secret::from("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            digest,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn meta_scheme_accepts_valid_and_refuses_the_rest() {
        let secret = Secret::from("app-secret");
        let scheme = SignatureScheme::meta(secret.clone());
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let good = format!("sha256={}", sign_hmac_sha256_hex(&secret, body));

        assert_eq!(
            scheme.verify(&headers("x-hub-signature-256", &good), body),
            Ok(())
        );
        assert_eq!(
            scheme.verify(
                &headers(
                    "x-hub-signature-256",
                    &good.to_uppercase().replace("SHA256=", "sha256=")
                ),
                body
            ),
            Ok(())
        );
        assert_eq!(
            scheme.verify(&HeaderMap::new(), body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            scheme.verify(&headers("x-hub-signature-256", ""), body),
            Err(SignatureError::Missing)
        );

        let tampered = br#"{"object":"whatsapp_business_account","entry":[1]}"#;
        assert_eq!(
            scheme.verify(&headers("x-hub-signature-256", &good), tampered),
            Err(SignatureError::Mismatch)
        );

        let other_secret = format!("sha256={}", sign_hmac_sha256_hex(&Secret::from("other"), body));
        assert_eq!(
            scheme.verify(&headers("x-hub-signature-256", &other_secret), body),
            Err(SignatureError::Mismatch)
        );
        let no_prefix = sign_hmac_sha256_hex(&secret, body);
        assert_eq!(
            scheme.verify(&headers("x-hub-signature-256", &no_prefix), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            scheme.verify(&headers("x-hub-signature-256", "sha256=zz"), body),
            Err(SignatureError::Malformed)
        );
        let short = &good[..good.len() - 2];
        assert_eq!(
            scheme.verify(&headers("x-hub-signature-256", short), body),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn shared_token_scheme() {
        let scheme = SignatureScheme::SharedToken {
            header: "x-telegram-bot-api-secret-token",
            token: "s3cret".into(),
        };
        assert_eq!(
            scheme.verify(&headers("x-telegram-bot-api-secret-token", "s3cret"), b"{}"),
            Ok(())
        );
        assert_eq!(
            scheme.verify(&headers("x-telegram-bot-api-secret-token", "s3creT"), b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            scheme.verify(&HeaderMap::new(), b"{}"),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
