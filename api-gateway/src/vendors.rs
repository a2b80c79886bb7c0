//! The platforms' own reads (channel info, a user's listings, history),
//! asked of each platform's connector: the adapter's gRPC service, the same
//! one its sidecar sends through.
//!
//! A platform without a configured connector is refused with
//! FAILED_PRECONDITION naming the flag; a connector's own refusal (an
//! UNIMPLEMENTED call, an unknown channel) keeps its code and gains the
//! platform's name.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use chat4all_domain::Platform;
use chat4all_proto::v1::{self as pb, connector_client::ConnectorClient};
use tokio::sync::OnceCell;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::config::ConnectorAddr;

struct Connector {
    client: ConnectorClient<Channel>,
    /// Asked once; a failed Describe is asked again next time.
    capabilities: OnceCell<pb::Capabilities>,
}

/// The configured connectors, by platform.
#[derive(Default)]
pub(crate) struct Connectors {
    by_platform: HashMap<Platform, Connector>,
}

impl Connectors {
    /// Connects lazily: a connector that is down fails its calls, not the
    /// gateway's start.
    pub(crate) fn new(addrs: &[ConnectorAddr], timeout: Duration) -> anyhow::Result<Self> {
        let mut by_platform = HashMap::new();
        for addr in addrs {
            let channel = Endpoint::from_shared(addr.uri.clone())
                .with_context(|| format!("the {} connector's address {:?}", addr.platform, addr.uri))?
                .connect_timeout(timeout)
                .timeout(timeout)
                .connect_lazy();
            by_platform.insert(
                addr.platform,
                Connector {
                    client: ConnectorClient::new(channel),
                    capabilities: OnceCell::new(),
                },
            );
        }
        Ok(Self { by_platform })
    }

    pub(crate) fn serves(&self, platform: Platform) -> bool {
        self.by_platform.contains_key(&platform)
    }

    fn connector(&self, platform: Platform) -> Result<&Connector, Status> {
        self.by_platform.get(&platform).ok_or_else(|| {
            Status::failed_precondition(format!(
                "no {platform} connector is configured at the gateway (--connector {platform}=<address>)"
            ))
        })
    }

    pub(crate) async fn capabilities(&self, platform: Platform) -> Result<pb::Capabilities, Status> {
        let connector = self.connector(platform)?;
        connector
            .capabilities
            .get_or_try_init(|| async {
                let described = connector
                    .client
                    .clone()
                    .describe(pb::DescribeRequest {})
                    .await
                    .map_err(|s| refused(platform, "describe", &s))?;
                Ok(described.into_inner().capabilities.unwrap_or_default())
            })
            .await
            .cloned()
    }

    pub(crate) async fn channel_info(
        &self,
        platform: Platform,
        vendor_channel_id: &str,
    ) -> Result<pb::ChannelInfo, Status> {
        let mut client = self.connector(platform)?.client.clone();
        let answer = client
            .get_channel_info(pb::GetChannelInfoRequest {
                vendor_channel_id: vendor_channel_id.to_owned(),
            })
            .await;
        counted(platform, "get_channel_info", answer)
    }

    pub(crate) async fn user_products(
        &self,
        platform: Platform,
        request: pb::ListUserProductsRequest,
    ) -> Result<pb::ListUserProductsResponse, Status> {
        let mut client = self.connector(platform)?.client.clone();
        let answer = client.list_user_products(request).await;
        counted(platform, "list_user_products", answer)
    }

    /// A channel's history as our account sees it, newest first.
    pub(crate) async fn history(
        &self,
        platform: Platform,
        request: pb::ConnectorListMessagesRequest,
    ) -> Result<Vec<pb::InboundMessage>, Status> {
        let mut client = self.connector(platform)?.client.clone();
        let answer = client.list_messages(request).await;
        counted(platform, "list_messages", answer).map(|r| r.messages)
    }
}

fn counted<T>(
    platform: Platform,
    call: &'static str,
    answer: Result<tonic::Response<T>, Status>,
) -> Result<T, Status> {
    let code = match &answer {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };
    metrics::counter!(
        "chat4all_connector_reads_total",
        "platform" => platform.as_str(),
        "call" => call,
        "code" => format!("{code:?}")
    )
    .increment(1);
    answer
        .map(tonic::Response::into_inner)
        .map_err(|status| refused(platform, call, &status))
}

/// The connector's status, its code kept, its message naming the platform.
fn refused(platform: Platform, call: &str, status: &Status) -> Status {
    if status.code() == Code::Unavailable {
        tracing::warn!(%platform, call, reason = status.message(), "connector unreachable");
    }
    Status::new(
        status.code(),
        format!("{platform} connector: {}", status.message()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_platform_without_a_connector_is_a_failed_precondition_naming_the_flag() {
        let none = Connectors::default();
        assert!(!none.serves(Platform::Chotot));
        let status = none.channel_info(Platform::Chotot, "ch-1").await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("--connector chotot="), "{status:?}");
    }

    #[tokio::test]
    async fn an_unreachable_connector_is_unavailable_and_named() {
        let addr = ConnectorAddr {
            platform: Platform::Telegram,
            // Nothing listens on port 1.
            uri: "http://127.0.0.1:1".into(),
        };
        let connectors = Connectors::new(&[addr], Duration::from_secs(2)).unwrap();
        let status = connectors.capabilities(Platform::Telegram).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().starts_with("telegram connector"), "{status:?}");
    }
}
