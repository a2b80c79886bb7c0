//! The Messenger adapter's configuration, from `--messenger-…` flags or
//! `CHAT4ALL_MESSENGER_*` environment variables; the struct itself is the
//! kit's, shared by every Meta platform. The defaults run on one machine
//! against the platform simulator, whose default page token is
//! [`MessengerConfig::DEFAULT_ACCESS_TOKEN`].

chat4all_adapter::meta_config! {
    /// How to reach Messenger (the page's Send API) and where to serve.
    /// `Debug` hides the credentials.
    MessengerConfig {
        platform: crate::MESSENGER,
        prefix: "messenger",
        env: "MESSENGER",
        access_token: "chat4all-dev-page-access-token",
        grpc_listen: "127.0.0.1:50062",
        webhook_listen: "127.0.0.1:8062",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use chat4all_adapter::meta::MetaError;
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: MessengerConfig,
    }

    #[test]
    fn flag_defaults_are_the_default_and_flags_override() {
        let parsed = Cli::try_parse_from(["chat4all-messenger"]).unwrap().config;
        assert_eq!(parsed, MessengerConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(parsed.grpc_listen.port(), 50062);
        assert_eq!(parsed.webhook_listen.port(), 8062);
        assert_eq!(
            parsed.parts().settings.messages_url(),
            "http://127.0.0.1:9100/v21.0/me/messages"
        );

        let parsed = Cli::try_parse_from([
            "x",
            "--messenger-api-base-url=https://graph.facebook.com/",
            "--messenger-request-timeout=250ms",
            "--messenger-access-token=EAAB",
        ])
        .unwrap()
        .config;
        assert_eq!(parsed.request_timeout, Duration::from_millis(250));
        assert_eq!(parsed.access_token.expose(), "EAAB");
        assert!(!parsed.uses_dev_credentials() || parsed.app_secret.expose() == "chat4all-dev-app-secret");
        assert!(Cli::try_parse_from(["x", "--messenger-request-timeout=soon"]).is_err());

        let bad = MessengerConfig {
            api_base_url: "localhost:9100".into(),
            ..MessengerConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(MetaError::InvalidConfig {
                platform: "messenger",
                field: "api_base_url",
                ..
            })
        ));
    }

    #[test]
    fn debug_hides_credentials() {
        let shown = format!("{:?}", MessengerConfig::default());
        assert!(!shown.contains(MessengerConfig::DEFAULT_ACCESS_TOKEN), "{shown}");
        assert!(!shown.contains("chat4all-dev-app-secret"), "{shown}");
    }
}
