//! What a gRPC port says about itself, asked the way grpcurl, Kubernetes
//! and load balancers ask: server reflection, both v1 and v1alpha (grpcurl
//! 1.8 knows only v1alpha), and `grpc.health.v1`.

use std::collections::BTreeSet;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The same client calls for both reflection versions, whose generated
/// types mirror each other.
macro_rules! reflection_client {
    ($version:ident) => {
        /// Server reflection, this version.
        pub mod $version {
            use std::collections::BTreeSet;

            use anyhow::Context as _;
            use prost::Message as _;
            use tonic::transport::Channel;
            use tonic_reflection::pb::$version::ServerReflectionRequest;
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

            /// One request on its own stream; the one answer.
            async fn ask(channel: Channel, request: MessageRequest) -> anyhow::Result<MessageResponse> {
                let request = ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(request),
                };
                let mut answers = ServerReflectionClient::new(channel)
                    .server_reflection_info(tokio_stream::once(request))
                    .await?
                    .into_inner();
                let answer = answers.message().await?.context("no reflection answer")?;
                match answer
                    .message_response
                    .context("an empty reflection answer")?
                {
                    MessageResponse::ErrorResponse(e) => {
                        anyhow::bail!("reflection error {}: {}", e.error_code, e.error_message)
                    }
                    answer => Ok(answer),
                }
            }

            /// ListServices.
            pub async fn services(channel: Channel) -> anyhow::Result<BTreeSet<String>> {
                match ask(channel, MessageRequest::ListServices(String::new())).await? {
                    MessageResponse::ListServicesResponse(list) => {
                        Ok(list.service.into_iter().map(|s| s.name).collect())
                    }
                    other => anyhow::bail!("not a service list: {other:?}"),
                }
            }

            fn files(answer: MessageResponse) -> anyhow::Result<Vec<prost_types::FileDescriptorProto>> {
                let MessageResponse::FileDescriptorResponse(files) = answer else {
                    anyhow::bail!("not file descriptors: {answer:?}");
                };
                files
                    .file_descriptor_proto
                    .iter()
                    .map(|f| Ok(prost_types::FileDescriptorProto::decode(f.as_slice())?))
                    .collect()
            }

            /// FileContainingSymbol.
            pub async fn file_containing(
                channel: Channel,
                symbol: &str,
            ) -> anyhow::Result<Vec<prost_types::FileDescriptorProto>> {
                files(
                    ask(
                        channel,
                        MessageRequest::FileContainingSymbol(symbol.to_owned()),
                    )
                    .await?,
                )
            }

            /// FileByFilename.
            pub async fn file_by_name(
                channel: Channel,
                name: &str,
            ) -> anyhow::Result<Vec<prost_types::FileDescriptorProto>> {
                files(ask(channel, MessageRequest::FileByFilename(name.to_owned())).await?)
            }
        }
    };
}

reflection_client!(v1);
reflection_client!(v1alpha);

/// What every port serves besides its own services.
pub const ADMIN_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The services a port serving `own` must list: those and the admin ones.
pub fn expected_services(own: &[&str]) -> BTreeSet<String> {
    own.iter()
        .chain(ADMIN_SERVICES.iter())
        .map(|s| (*s).to_owned())
        .collect()
}

/// grpc.health.v1.Health/Check for `service` (`""`: the whole port).
pub async fn health(channel: Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown))
}

/// grpc.health.v1.Health/Watch for `service`, as a stream of statuses.
pub async fn watch_health(
    channel: Channel,
    service: &str,
) -> Result<tonic::Streaming<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
    Ok(HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner())
}
