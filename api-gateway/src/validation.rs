//! SendMessage checks: every field's problem is named, all at once, before
//! anything is stored or sent.

use chat4all_domain::{ConversationId, Platform, Recipient, RecipientError};
use chat4all_proto::v1::SendMessageRequest;

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) field: &'static str,
    pub(crate) description: String,
}

/// A request that passed.
#[derive(Debug)]
pub(crate) struct ValidSend {
    pub(crate) recipient: Recipient,
    pub(crate) conversation_id: ConversationId,
    pub(crate) idempotency_key: Option<String>,
}

const MAX_IDEMPOTENCY_KEY: usize = 256;

pub(crate) fn validate_send(
    req: &SendMessageRequest,
    enabled: &[Platform],
    max_text_chars: usize,
) -> Result<ValidSend, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut bad = |field, description: String| violations.push(Violation { field, description });

    let recipient = match req.recipient.parse::<Recipient>() {
        Ok(r) if !enabled.contains(&r.platform) => {
            bad(
                "recipient",
                format!("platform {} is not enabled on this gateway", r.platform),
            );
            None
        }
        Ok(r) => Some(r),
        Err(RecipientError::Missing) => {
            bad("recipient", "is required".to_owned());
            None
        }
        Err(e) => {
            bad("recipient", e.to_string());
            None
        }
    };
    if req.text.trim().is_empty() {
        bad("text", "must not be empty".to_owned());
    } else {
        let chars = req.text.chars().count();
        if chars > max_text_chars {
            bad(
                "text",
                format!("is {chars} characters; at most {max_text_chars} are allowed"),
            );
        }
    }
    let conversation_id = if req.conversation_id.is_empty() {
        // One conversation per recipient unless the caller says otherwise.
        recipient.as_ref().and_then(|r| r.to_string().parse().ok())
    } else {
        match req.conversation_id.parse::<ConversationId>() {
            Ok(c) => Some(c),
            Err(e) => {
                bad("conversation_id", e.to_string());
                None
            }
        }
    };
    if req.idempotency_key.len() > MAX_IDEMPOTENCY_KEY {
        bad(
            "idempotency_key",
            format!("is longer than {MAX_IDEMPOTENCY_KEY} bytes"),
        );
    }
    match (recipient, conversation_id) {
        (Some(recipient), Some(conversation_id)) if violations.is_empty() => Ok(ValidSend {
            recipient,
            conversation_id,
            idempotency_key: (!req.idempotency_key.is_empty()).then(|| req.idempotency_key.clone()),
        }),
        _ => Err(violations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(recipient: &str, text: &str) -> SendMessageRequest {
        SendMessageRequest {
            recipient: recipient.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    fn fields(r: Result<ValidSend, Vec<Violation>>) -> Vec<&'static str> {
        r.err().unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn names_each_bad_field() {
        let all = Platform::ALL;
        assert_eq!(fields(validate_send(&req("", "hi"), &all, 4096)), ["recipient"]);
        assert_eq!(
            fields(validate_send(&req("fax:1", "hi"), &all, 4096)),
            ["recipient"]
        );
        assert_eq!(
            fields(validate_send(&req("whatsapp:15551234567", " "), &all, 4096)),
            ["text"]
        );
        let long = "é".repeat(4097);
        assert_eq!(
            fields(validate_send(&req("whatsapp:15551234567", &long), &all, 4096)),
            ["text"]
        );
        assert_eq!(
            fields(validate_send(&req("", ""), &all, 4096)),
            ["recipient", "text"]
        );
        assert_eq!(
            fields(validate_send(
                &req("telegram:1", "hi"),
                &[Platform::WhatsApp],
                4096
            )),
            ["recipient"]
        );
    }

    #[test]
    fn exactly_the_limit_passes_and_conversation_defaults_to_recipient() {
        let ok = validate_send(
            &req("whatsapp:15551234567", &"é".repeat(4096)),
            &Platform::ALL,
            4096,
        );
        let ok = ok.map_err(|v| format!("{v:?}"));
        assert_eq!(
            ok.map(|v| v.conversation_id.to_string()),
            Ok("whatsapp:15551234567".to_owned())
        );
    }
}
