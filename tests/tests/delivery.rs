//! End to end through the real gRPC API and the Kafka path (librdkafka's
//! mock cluster), the embedded store, the WhatsApp adapter and the platform
//! simulator's real HTTP server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use chat4all_proto::v1::{self as pb, GetMessageRequest, ListMessagesRequest};
use chat4all_tests::{TestSystem, send_request, wait_for};
use tonic::Code;

const WITHIN: Duration = Duration::from_secs(60);

fn state_order(message: &pb::Message) -> Vec<i32> {
    message.timeline.iter().map(|s| s.status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_messages_over_ten_conversations_reach_read_in_order() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();

    // A watcher on one conversation sees its messages appear and move on.
    let mut watch = client
        .watch_messages(chat4all_tests::watch_conversation("conv-0"))
        .await
        .unwrap()
        .into_inner();

    let mut senders = Vec::new();
    for c in 0..10 {
        let mut client = t.client().await.unwrap();
        senders.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let req = send_request(
                    &format!("whatsapp:155500000{c:02}"),
                    &format!("c{c}-m{i:02}"),
                    &format!("conv-{c}"),
                );
                ids.push(client.send_message(req).await.unwrap().into_inner().message_id);
            }
            ids
        }));
    }
    let mut ids_by_conversation = Vec::new();
    for s in senders {
        ids_by_conversation.push(s.await.unwrap());
    }

    let all = [
        pb::DeliveryStatus::Accepted as i32,
        pb::DeliveryStatus::Routed as i32,
        pb::DeliveryStatus::Sent as i32,
        pb::DeliveryStatus::Delivered as i32,
        pb::DeliveryStatus::Read as i32,
    ];
    for ids in &ids_by_conversation {
        for id in ids {
            let m = wait_for(&mut client, id, pb::DeliveryStatus::Read, WITHIN)
                .await
                .unwrap();
            assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "message {id}: {m:?}");
            assert_eq!(state_order(&m), all, "every state has its timestamp: {m:?}");
            let times: Vec<_> = m
                .timeline
                .iter()
                .map(|s| s.at.unwrap())
                .map(|t| (t.seconds, t.nanos))
                .collect();
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "timestamps in state order: {times:?}"
            );
            assert!(m.platform_message_id.starts_with("wamid."), "{m:?}");
            assert_eq!(m.trace_id.len(), 32);
            // The platform posted its receipts in order, and they reached
            // the store in that order: none came after a later one.
            let receipts: Vec<i32> = m
                .history
                .iter()
                .filter(|h| h.hop == "webhook")
                .map(|h| h.status)
                .collect();
            assert_eq!(receipts, all[2..], "receipts in the platform's order: {m:?}");
        }
    }

    // The platform got each message once, each conversation in send order.
    let received = t.system.simulator.received("whatsapp");
    assert_eq!(received.len(), 200, "one platform call per message");
    let mut by_recipient: HashMap<String, Vec<String>> = HashMap::new();
    for r in &received {
        by_recipient.entry(r.to.clone()).or_default().push(r.text.clone());
    }
    for c in 0..10 {
        let want: Vec<String> = (0..20).map(|i| format!("c{c}-m{i:02}")).collect();
        assert_eq!(
            by_recipient[&format!("155500000{c:02}")],
            want,
            "conversation {c} in order"
        );
    }

    // The watcher saw conversation 0's messages created and read.
    let mut created = 0;
    let mut read = 0;
    while created < 20 || read < 20 {
        let event = tokio::time::timeout(WITHIN, watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.conversation_id, "conv-0");
        if event.kind == pb::MessageEventKind::Created as i32 {
            created += 1;
        }
        if event.status == pb::DeliveryStatus::Read as i32 {
            read += 1;
        }
    }

    // ListMessages: newest first, paged.
    let first = client
        .list_messages(ListMessagesRequest {
            conversation_id: "conv-3".into(),
            page_size: 15,
            page_token: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.messages.len(), 15);
    assert_eq!(first.messages[0].text, "c3-m19");
    let rest = client
        .list_messages(ListMessagesRequest {
            conversation_id: "conv-3".into(),
            page_size: 15,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.messages.len(), 5);
    assert_eq!(rest.messages[4].text, "c3-m00");
    assert!(rest.next_page_token.is_empty());

    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_gives_one_message_and_one_platform_call() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    let mut req = send_request("whatsapp:15551234567", "only once", "");
    req.idempotency_key = "order-42-confirmation".into();

    let first = client.send_message(req.clone()).await.unwrap().into_inner();
    let second = client.send_message(req.clone()).await.unwrap().into_inner();
    assert_eq!(first.message_id, second.message_id);
    assert!(!first.duplicate);
    assert!(second.duplicate);

    let m = wait_for(&mut client, &first.message_id, pb::DeliveryStatus::Read, WITHIN)
        .await
        .unwrap();
    assert_eq!(m.status, pb::DeliveryStatus::Read as i32);
    // Once read, a third try still sends nothing.
    let third = client.send_message(req.clone()).await.unwrap().into_inner();
    assert_eq!(third.message_id, first.message_id);

    // The same key with another text is a conflict, not a silent reuse.
    req.text = "something else".into();
    let conflict = client.send_message(req).await.unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = t.system.simulator.received("whatsapp");
    assert_eq!(
        calls.iter().filter(|r| r.text == "only once").count(),
        1,
        "{calls:?}"
    );
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_are_refused_naming_the_field_and_nothing_is_stored_or_sent() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    let cases = [
        (send_request("whatsapp:15551234567", "", "bad"), "text"),
        (send_request("fax:15551234567", "hi", "bad"), "recipient"),
        (
            send_request("whatsapp:15551234567", &"a".repeat(4097), "bad"),
            "text",
        ),
        (send_request("", "hi", "bad"), "recipient"),
    ];
    for (req, field) in cases {
        let status = client.send_message(req.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{req:?}");
        assert!(
            status.message().contains(field),
            "{field} named in {:?}",
            status.message()
        );
        use tonic_types::StatusExt;
        let details = status.get_details_bad_request().expect("BadRequest details");
        assert!(
            details.field_violations.iter().any(|v| v.field == field),
            "{details:?}"
        );
    }
    // A good message after the bad ones: once it is sent, everything before
    // it has been through the pipeline too.
    let ok = client
        .send_message(send_request("whatsapp:15551234567", "fine", "good"))
        .await
        .unwrap()
        .into_inner();
    let m = wait_for(&mut client, &ok.message_id, pb::DeliveryStatus::Sent, WITHIN)
        .await
        .unwrap();
    assert!(m.status >= pb::DeliveryStatus::Sent as i32);
    let listed = client
        .list_messages(ListMessagesRequest {
            conversation_id: "bad".into(),
            page_size: 10,
            page_token: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.messages.is_empty(), "nothing stored: {listed:?}");
    let calls = t.system.simulator.received("whatsapp");
    assert_eq!(
        calls.len(),
        1,
        "only the good message reached the platform: {calls:?}"
    );

    let unknown = client
        .get_message(GetMessageRequest {
            message_id: "not-an-id".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_survive_a_restart_on_the_same_data_directory() {
    let t = TestSystem::start().await.unwrap();
    let dir = t.dir;
    let mut client =
        chat4all_proto::v1::messaging_service_client::MessagingServiceClient::connect(t.system.gateway_url())
            .await
            .unwrap();
    let mut before = Vec::new();
    for i in 0..30 {
        let req = send_request("whatsapp:15551230000", &format!("before restart {i}"), "restart");
        before.push(client.send_message(req).await.unwrap().into_inner().message_id);
    }
    let last = wait_for(&mut client, &before[29], pb::DeliveryStatus::Read, WITHIN)
        .await
        .unwrap();
    assert_eq!(last.status, pb::DeliveryStatus::Read as i32);
    let mut statuses = HashMap::new();
    for id in &before {
        let m = client
            .get_message(GetMessageRequest {
                message_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .message
            .unwrap();
        statuses.insert(id.clone(), m.status);
    }
    t.system.stop().await.unwrap();

    let system = chat4all::System::start(chat4all::SystemConfig::ephemeral(dir.path()))
        .await
        .unwrap();
    let mut client =
        chat4all_proto::v1::messaging_service_client::MessagingServiceClient::connect(system.gateway_url())
            .await
            .unwrap();
    for id in &before {
        let m = client
            .get_message(GetMessageRequest {
                message_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .message
            .unwrap();
        assert_eq!(m.status, statuses[id], "{id} kept its state");
        assert!(!m.timeline.is_empty());
    }
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_whose_record_was_lost_is_republished_and_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chat4all::SystemConfig::ephemeral(dir.path());
    config.reconcile.after = Duration::from_millis(500);
    config.reconcile.every = Duration::from_millis(200);
    let system = chat4all::System::start(config).await.unwrap();

    // Accepted by the store, but its `messages` record never produced: what a
    // broker outage past librdkafka's retries leaves behind.
    let id = stored_without_record(&system, "lost on the way", None).await;

    let mut client = client(&system).await;
    let m = wait_for(&mut client, &id.to_string(), pb::DeliveryStatus::Read, WITHIN)
        .await
        .unwrap();
    assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "{m:?}");
    // Later rounds find nothing more to do: still one platform call.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(platform_calls(&system, "lost on the way"), 1);
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_routed_message_is_finished_by_whoever_takes_its_expired_claim() {
    use chat4all_domain::{DeliveryStatus, Timestamp};
    use chat4all_store::PlatformAnswer;

    let dir = tempfile::tempdir().unwrap();
    let mut config = chat4all::SystemConfig::ephemeral(dir.path());
    config.reconcile.routed_after = Duration::from_millis(500);
    config.reconcile.every = Duration::from_millis(200);
    let system = chat4all::System::start(config).await.unwrap();

    // Routed, their `<platform>-outbound` records never produced: what a
    // broker that came back empty leaves behind. Two of them a sidecar had
    // claimed and then died, one after the platform answered (its SENT is
    // what was lost), one during the call (nobody knows if WhatsApp took it).
    let lost = stored_without_record(&system, "outbound lost", Some(DeliveryStatus::Routed)).await;
    let answered = stored_without_record(&system, "answered, SENT lost", Some(DeliveryStatus::Routed)).await;
    let mid_call = stored_without_record(&system, "died mid-call", Some(DeliveryStatus::Routed)).await;
    let live = stored_without_record(&system, "still being sent", Some(DeliveryStatus::Routed)).await;
    let lease = Duration::from_millis(800);
    system
        .store
        .claim_for_send(&[answered, mid_call], "sidecar-gone", lease)
        .await
        .unwrap();
    system
        .store
        .claim_for_send(&[live], "sidecar-busy", Duration::from_secs(600))
        .await
        .unwrap();
    system
        .store
        .record_answer(
            answered,
            &PlatformAnswer {
                platform_message_id: "wamid.recorded".into(),
                at: Timestamp::now(),
            },
        )
        .await
        .unwrap();

    let mut client = client(&system).await;
    let m = wait_for(&mut client, &lost.to_string(), pb::DeliveryStatus::Read, WITHIN)
        .await
        .unwrap();
    assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "{m:?}");
    let m = wait_for(
        &mut client,
        &answered.to_string(),
        pb::DeliveryStatus::Sent,
        WITHIN,
    )
    .await
    .unwrap();
    assert_eq!(
        (m.status, m.platform_message_id.as_str()),
        (pb::DeliveryStatus::Sent as i32, "wamid.recorded"),
        "the recorded answer is announced: {m:?}"
    );
    let m = wait_for(
        &mut client,
        &mid_call.to_string(),
        pb::DeliveryStatus::Failed,
        WITHIN,
    )
    .await
    .unwrap();
    let failure = m.failure.clone().unwrap_or_default();
    assert_eq!(
        (m.status, failure.code.as_str()),
        (pb::DeliveryStatus::Failed as i32, "outcome_unknown"),
        "WhatsApp echoes nothing, so a call that may have acted is not repeated: {m:?}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(platform_calls(&system, "outbound lost"), 1);
    assert_eq!(platform_calls(&system, "answered, SENT lost"), 0);
    assert_eq!(platform_calls(&system, "died mid-call"), 0);
    assert_eq!(platform_calls(&system, "still being sent"), 0);
    let still = client
        .get_message(GetMessageRequest {
            message_id: live.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(
        still.status,
        pb::DeliveryStatus::Routed as i32,
        "a live claim is a send in progress: left alone"
    );
    system.stop().await.unwrap();
}

/// A platform that took the message but answered too late: by default the
/// message is not sent again (FAILED, `outcome_unknown`); at-least-once
/// sends it again; and Messenger's echo settles it without a second call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_that_may_have_acted_is_settled_not_retried_blindly() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chat4all::SystemConfig::ephemeral(dir.path());
    config.adapter_timeout = Duration::from_millis(400);
    let system = chat4all::System::start(config).await.unwrap();
    let mut client = client(&system).await;
    let sim = system.simulator.clone();

    // Warm: the pipelines joined their groups before the trouble starts.
    for to in ["whatsapp:15550001111", "messenger:24000000000000001"] {
        let id = client
            .send_message(send_request(to, "warm-up", "warm"))
            .await
            .unwrap()
            .into_inner()
            .message_id;
        wait_for(&mut client, &id, pb::DeliveryStatus::Sent, WITHIN)
            .await
            .unwrap();
    }

    // WhatsApp acts on each send and answers after the adapter gave up;
    // with its status webhooks on, their `sent` would settle the doubt (as
    // a later receipt supersedes FAILED), so they are off.
    sim.set_receipts("whatsapp", false).unwrap();
    sim.set_timeout("whatsapp", Some(Duration::from_secs(2))).unwrap();
    let once = client
        .send_message(send_request("whatsapp:15550002222", "maybe once", "ambiguous-1"))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let m = wait_for(&mut client, &once, pb::DeliveryStatus::Failed, WITHIN)
        .await
        .unwrap();
    assert_eq!(
        m.failure.as_ref().map(|f| f.code.as_str()),
        Some("outcome_unknown"),
        "{m:?}"
    );
    assert_eq!(platform_calls(&system, "maybe once"), 1, "never sent twice");

    let mut request = send_request("whatsapp:15550003333", "at least once", "ambiguous-2");
    request.at_least_once = true;
    let again = client
        .send_message(request)
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let deadline = std::time::Instant::now() + WITHIN;
    while platform_calls(&system, "at least once") < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.set_timeout("whatsapp", None).unwrap();
    let m = wait_for(&mut client, &again, pb::DeliveryStatus::Sent, WITHIN)
        .await
        .unwrap();
    assert!(m.status >= pb::DeliveryStatus::Sent as i32, "{m:?}");
    assert_eq!(
        platform_calls(&system, "at least once"),
        2,
        "the caller asked for a second call rather than none"
    );

    // Messenger's echo of our send confirms it: SENT, one call.
    sim.set_timeout("messenger", Some(Duration::from_secs(2)))
        .unwrap();
    sim.set_echo_before_response("messenger", true).unwrap();
    let echoed = client
        .send_message(send_request(
            "messenger:24000000000000002",
            "echoed",
            "ambiguous-3",
        ))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let m = wait_for(&mut client, &echoed, pb::DeliveryStatus::Sent, WITHIN)
        .await
        .unwrap();
    assert!(m.status >= pb::DeliveryStatus::Sent as i32, "{m:?}");
    assert!(!m.platform_message_id.is_empty(), "the echo named the mid: {m:?}");
    let messenger_calls = sim
        .received("messenger")
        .iter()
        .filter(|c| c.text == "echoed")
        .count();
    assert_eq!(messenger_calls, 1);
    system.stop().await.unwrap();
}

/// A WhatsApp message written to the store only (then moved to `status`),
/// as if every Kafka record about it had been lost.
async fn stored_without_record(
    system: &chat4all::System,
    text: &str,
    status: Option<chat4all_domain::DeliveryStatus>,
) -> chat4all_domain::MessageId {
    use chat4all_domain::{MessageId, Timestamp};
    use chat4all_store::{MessageRef, NewMessage, StatusChange};

    let id = MessageId::generate();
    system
        .store
        .put_message(NewMessage {
            id,
            conversation_id: "lost".parse().unwrap(),
            recipient: "whatsapp:15557654321".parse().unwrap(),
            text: text.into(),
            source: "api".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            created_at: Timestamp::now(),
            idempotency_key: None,
        })
        .await
        .unwrap();
    if let Some(status) = status {
        system
            .store
            .apply_transitions(vec![StatusChange {
                message: MessageRef::Id(id),
                status,
                at: Timestamp::now(),
                hop: "router".into(),
                platform_message_id: None,
                failure: None,
            }])
            .await
            .unwrap();
    }
    id
}

async fn client(
    system: &chat4all::System,
) -> chat4all_proto::v1::messaging_service_client::MessagingServiceClient<tonic::transport::Channel> {
    chat4all_proto::v1::messaging_service_client::MessagingServiceClient::connect(system.gateway_url())
        .await
        .unwrap()
}

/// How many times WhatsApp was sent `text`.
fn platform_calls(system: &chat4all::System, text: &str) -> usize {
    let calls = system.simulator.received("whatsapp");
    calls.iter().filter(|c| c.text == text).count()
}
