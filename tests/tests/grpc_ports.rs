//! Every gRPC port of the system answers grpcurl and a Kubernetes probe:
//! reflection, v1 and v1alpha, lists exactly the services the port serves
//! and resolves the `google.rpc` error details a status carries; health
//! says SERVING for the port and its service, and NOT_SERVING once
//! shutdown begins, to clients already watching, which are then let go so
//! that they do not hold the drain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chat4all_tests::TestSystem;
use chat4all_tests::introspect::{self, expected_services, health, v1, v1alpha, watch_health};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;

async fn connect(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn names(files: &[prost_types::FileDescriptorProto]) -> Vec<String> {
    files.iter().filter_map(|f| f.name.clone()).collect()
}

/// Asks the port at `url` everything a client asks of it.
async fn check_port(url: &str, own: Option<&str>) {
    let channel = connect(url).await;
    let expected = expected_services(own.as_slice());
    assert_eq!(
        v1::services(channel.clone()).await.unwrap(),
        expected,
        "{url}: v1 ListServices"
    );
    assert_eq!(
        v1alpha::services(channel.clone()).await.unwrap(),
        expected,
        "{url}: v1alpha ListServices"
    );

    // What a listed service is, and what an error detail is, can be looked
    // up; error_details.proto's import too, which grpcurl asks for next.
    for service in &expected {
        let files = v1::file_containing(channel.clone(), service).await.unwrap();
        assert!(!files.is_empty(), "{url}: {service} is not described");
        let files = v1alpha::file_containing(channel.clone(), service).await.unwrap();
        assert!(!files.is_empty(), "{url}: {service} is not described (v1alpha)");
    }
    let files = v1::file_containing(channel.clone(), "google.rpc.BadRequest")
        .await
        .unwrap();
    assert!(
        names(&files).contains(&"google/rpc/error_details.proto".to_owned()),
        "{url}: {:?}",
        names(&files)
    );
    let files = v1alpha::file_containing(channel.clone(), "google.rpc.BadRequest")
        .await
        .unwrap();
    assert!(
        names(&files).contains(&"google/rpc/error_details.proto".to_owned()),
        "{url}: {:?}",
        names(&files)
    );
    v1alpha::file_by_name(channel.clone(), "google/protobuf/duration.proto")
        .await
        .unwrap();

    assert_eq!(
        health(channel.clone(), "").await.unwrap(),
        ServingStatus::Serving,
        "{url}"
    );
    if let Some(own) = own {
        assert_eq!(
            health(channel.clone(), own).await.unwrap(),
            ServingStatus::Serving,
            "{url}: {own}"
        );
    }
}

/// Opens a Watch on the port and its service, each SERVING at first.
async fn watch(
    url: &str,
    own: Option<&str>,
) -> Vec<(String, tonic::Streaming<tonic_health::pb::HealthCheckResponse>)> {
    let channel = connect(url).await;
    let mut watches = Vec::new();
    for service in std::iter::once("").chain(own) {
        let mut stream = watch_health(channel.clone(), service).await.unwrap();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.status(), ServingStatus::Serving, "{url} {service:?}");
        watches.push((format!("{url} {service:?}"), stream));
    }
    watches
}

/// Each watch hears NOT_SERVING, then its stream ends.
async fn hear_the_drain(watches: Vec<(String, tonic::Streaming<tonic_health::pb::HealthCheckResponse>)>) {
    for (name, mut stream) in watches {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap_or_else(|_| panic!("{name}: no news of the drain"))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: the stream ended without NOT_SERVING"));
        assert_eq!(next.status(), ServingStatus::NotServing, "{name}");
        let after = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap_or_else(|_| panic!("{name}: the watch holds the drain open"));
        assert!(matches!(after, Ok(None) | Err(_)), "{name}: {after:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_port_of_the_system_describes_what_it_serves_and_says_when_it_drains() {
    let TestSystem { system, dir } = TestSystem::start().await.unwrap();
    let mut ports = vec![
        (system.gateway_url(), "chat4all.v1.MessagingService"),
        (
            format!("http://{}", system.store_addr),
            "chat4all.v1.MessageStore",
        ),
    ];
    ports.extend(
        system
            .connectors
            .iter()
            .map(|(_, url)| (url.clone(), "chat4all.v1.Connector")),
    );
    assert_eq!(ports.len(), 7, "gateway, store and five adapters");
    for (url, own) in &ports {
        check_port(url, Some(own)).await;
    }

    let mut watches = Vec::new();
    for (url, own) in &ports {
        watches.extend(watch(url, Some(own)).await);
    }
    let stopping = Instant::now();
    system.shutdown_token().cancel();
    hear_the_drain(watches).await;
    system.stop().await.unwrap();
    // The adapters give up waiting after 10 s: a drain held by a watch
    // would show here.
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    drop(dir);
}

#[tokio::test]
async fn a_health_only_port_describes_health_and_reflection_alone() {
    let shutdown = CancellationToken::new();
    let (addr, _) = chat4all_telemetry::serve_grpc_health(([127, 0, 0, 1], 0).into(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{addr}");
    check_port(&url, None).await;
    let watches = watch(&url, None).await;
    shutdown.cancel();
    hear_the_drain(watches).await;
    assert_eq!(introspect::ADMIN_SERVICES.len(), 3);
}
