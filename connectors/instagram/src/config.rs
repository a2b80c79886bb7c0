//! The Instagram adapter's configuration, from `--instagram-…` flags or
//! `CHAT4ALL_INSTAGRAM_*` environment variables; the struct itself is the
//! kit's, shared by every Meta platform. The defaults run on one machine
//! against the platform simulator, whose default Instagram token is
//! [`InstagramConfig::DEFAULT_ACCESS_TOKEN`] (not the Messenger page's: the
//! simulator tells the two platforms apart by it, as they share one path).

chat4all_adapter::meta_config! {
    /// How to reach Instagram messaging (the account's Send API) and where
    /// to serve. `Debug` hides the credentials.
    InstagramConfig {
        platform: crate::INSTAGRAM,
        prefix: "instagram",
        env: "INSTAGRAM",
        access_token: "chat4all-dev-instagram-access-token",
        grpc_listen: "127.0.0.1:50063",
        webhook_listen: "127.0.0.1:8063",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: InstagramConfig,
    }

    #[test]
    fn flag_defaults_are_the_default() {
        let parsed = Cli::try_parse_from(["chat4all-instagram"]).unwrap().config;
        assert_eq!(parsed, InstagramConfig::default());
        assert!(parsed.validate().is_ok());
        assert_eq!(
            (parsed.grpc_listen.port(), parsed.webhook_listen.port()),
            (50063, 8063)
        );
        let parsed = Cli::try_parse_from(["x", "--instagram-access-token=IGQV"])
            .unwrap()
            .config;
        assert_eq!(parsed.access_token.expose(), "IGQV");
        assert!(!format!("{parsed:?}").contains("IGQV"));
    }
}
