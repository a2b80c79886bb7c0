//! The store over gRPC: the contract through the client and server in front
//! of the embedded store, and what only the wire shows (field violations,
//! an unreachable server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_types::StatusExt;

use chat4all_domain::MessageId;
use chat4all_proto::v1 as pb;

use chat4all_store::contract::run_all;
use chat4all_store::{MessageStore, SharedStore, StoreError};
use chat4all_store_embedded::{EmbeddedOptions, EmbeddedStore};
use chat4all_store_grpc::{self as grpc, StoreClient};

fn embedded(dir: &tempfile::TempDir) -> EmbeddedStore {
    EmbeddedStore::open(&dir.path().join("contract.db"), EmbeddedOptions::default()).unwrap()
}

/// A store server on a free loopback port, until `stop` is sent.
struct Served {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

async fn serve(store: SharedStore) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        Server::builder()
            .add_service(grpc::server(store))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            }),
    );
    Served { addr, stop, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_over_grpc_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(&dir);
    let served = serve(Arc::new(store.clone())).await;
    let client = StoreClient::connect(&served.addr.to_string()).unwrap();
    run_all(Arc::new(client)).await;
    served.stop.send(()).unwrap();
    served.task.await.unwrap().unwrap();
    store.close().await;
}

#[tokio::test]
async fn malformed_ids_are_invalid_arguments_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(Arc::new(embedded(&dir))).await;
    let mut raw = pb::message_store_client::MessageStoreClient::connect(format!("http://{}", served.addr))
        .await
        .unwrap();
    let field_of = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status.get_details_bad_request().unwrap().field_violations[0]
            .field
            .clone()
    };
    let err = raw
        .get_message(pb::StoreGetMessageRequest {
            message_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(err), "message_id");
    let update = pb::StatusUpdate {
        message_id: "nope".into(),
        status: pb::DeliveryStatus::Sent.into(),
        ..Default::default()
    };
    let err = raw
        .apply_transitions(pb::ApplyTransitionsRequest {
            updates: vec![update],
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(err), "updates.message_id");
    let err = raw
        .claim_for_send(pb::ClaimForSendRequest {
            message_ids: vec!["nope".into()],
            claimant: "s".into(),
            lease: Some(chat4all_proto::Duration {
                seconds: 30,
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(err), "message_ids");
    let err = raw
        .claim_for_send(pb::ClaimForSendRequest {
            message_ids: vec![MessageId::generate().to_string()],
            claimant: "s".into(),
            lease: None,
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(err), "lease", "a claim for no time is refused");
    let err = raw
        .list_messages(pb::StoreListMessagesRequest {
            conversation_id: "c-1".into(),
            limit: 3,
            before: "garbage".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(err), "page_token");
    let _ = served.stop.send(());
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable() {
    // Bind then drop: a loopback port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let client = StoreClient::connect(&addr.to_string()).unwrap();
    match client.get_message(MessageId::generate()).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
