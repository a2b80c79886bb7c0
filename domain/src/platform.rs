use std::fmt;
use std::str::FromStr;

/// A messaging platform Chat4All delivers to. The table of known platforms
/// is this enum: adding one is adding a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    WhatsApp,
    Instagram,
    Messenger,
    Telegram,
    Chotot,
}

/// A platform name nobody serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform {name:?}; known platforms: {}", Platform::known_names())]
pub struct UnknownPlatform {
    pub name: String,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::WhatsApp,
        Platform::Instagram,
        Platform::Messenger,
        Platform::Telegram,
        Platform::Chotot,
    ];

    /// The name used in recipients, topics and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::WhatsApp => "whatsapp",
            Platform::Instagram => "instagram",
            Platform::Messenger => "messenger",
            Platform::Telegram => "telegram",
            Platform::Chotot => "chotot",
        }
    }

    /// Whether its receipts may come as watermarks ("everything before this
    /// time was read") that name no message: Meta's messaging platforms.
    pub fn has_watermark_receipts(self) -> bool {
        matches!(self, Platform::Messenger | Platform::Instagram)
    }

    /// Whether it tells us a message reached the phone (DELIVERED, READ):
    /// where it does not, SENT is as far as a message goes, and a SENT
    /// message waits on nothing.
    pub fn reports_receipts(self) -> bool {
        matches!(
            self,
            Platform::WhatsApp | Platform::Messenger | Platform::Instagram
        )
    }

    /// The Kafka topic its connector consumes.
    pub fn outbound_topic(self) -> String {
        format!("{}-outbound", self.as_str())
    }

    fn known_names() -> String {
        Self::ALL.map(Platform::as_str).join(", ")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, UnknownPlatform> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPlatform {
                name: s.chars().take(64).collect(),
            })
    }
}

/// Why a recipient string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("recipient is required")]
    Missing,
    #[error("recipient must be `platform:id`, e.g. `whatsapp:15551234567`")]
    NoPlatformPrefix,
    #[error(transparent)]
    UnknownPlatform(#[from] UnknownPlatform),
    #[error("{platform} recipient id {reason}")]
    BadId {
        platform: Platform,
        reason: &'static str,
    },
}

/// A platform user: `whatsapp:15551234567`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    pub platform: Platform,
    pub id: String,
}

impl Recipient {
    const MAX_ID_LEN: usize = 128;

    pub fn new(platform: Platform, id: &str) -> Result<Self, RecipientError> {
        let bad = |reason| RecipientError::BadId { platform, reason };
        if id.is_empty() {
            return Err(bad("is empty"));
        }
        if id.len() > Self::MAX_ID_LEN {
            return Err(bad("is longer than 128 characters"));
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains white space"));
        }
        let id = match platform {
            // WhatsApp addresses users by E.164 digits; a leading + is usual
            // in the wild and dropped here.
            Platform::WhatsApp => {
                let digits = id.strip_prefix('+').unwrap_or(id);
                if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("must be an E.164 number of 7 to 15 digits"));
                }
                digits
            }
            _ => id,
        };
        Ok(Self {
            platform,
            id: id.to_owned(),
        })
    }
}

impl FromStr for Recipient {
    type Err = RecipientError;
    fn from_str(s: &str) -> Result<Self, RecipientError> {
        if s.trim().is_empty() {
            return Err(RecipientError::Missing);
        }
        let (platform, id) = s.split_once(':').ok_or(RecipientError::NoPlatformPrefix)?;
        Recipient::new(platform.parse()?, id)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_platform_and_lists_the_known_ones_on_error() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
        }
        let err = "fax:1".parse::<Recipient>().unwrap_err();
        assert!(
            err.to_string()
                .contains("whatsapp, instagram, messenger, telegram, chotot"),
            "{err}"
        );
    }

    #[test]
    fn recipients() {
        let r: Recipient = "whatsapp:+15551234567".parse().unwrap();
        assert_eq!((r.platform, r.id.as_str()), (Platform::WhatsApp, "15551234567"));
        assert_eq!(r.to_string(), "whatsapp:15551234567");
        assert_eq!("".parse::<Recipient>(), Err(RecipientError::Missing));
        assert_eq!(
            "15551234567".parse::<Recipient>(),
            Err(RecipientError::NoPlatformPrefix)
        );
        assert!(matches!(
            "whatsapp:abc".parse::<Recipient>(),
            Err(RecipientError::BadId { .. })
        ));
        assert!(matches!(
            "telegram:".parse::<Recipient>(),
            Err(RecipientError::BadId { .. })
        ));
        assert!("telegram:-100123".parse::<Recipient>().is_ok());
        assert_eq!(Platform::Telegram.outbound_topic(), "telegram-outbound");
    }

    #[test]
    fn receipts_come_from_whatsapp_and_metas_platforms_only() {
        let reporting: Vec<_> = Platform::ALL
            .into_iter()
            .filter(|p| p.reports_receipts())
            .collect();
        assert_eq!(
            reporting,
            [Platform::WhatsApp, Platform::Instagram, Platform::Messenger]
        );
        // Watermarks are a kind of receipt.
        assert!(
            Platform::ALL
                .into_iter()
                .all(|p| !p.has_watermark_receipts() || p.reports_receipts())
        );
    }
}
