//! `/metrics` of the running one-process system, as Prometheus takes it:
//! `promtool check metrics` passes on it after traffic (every family has
//! HELP, names follow the conventions), the series an operator alerts on
//! exist from start-up for every platform, and every family the workspace
//! records has its help text in the catalog.
//!
//! Alone in its file, so its process's metrics are its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chat4all_proto::v1 as pb;
use chat4all_telemetry::MetricsEndpoint;
use chat4all_telemetry::metric_catalog::FAMILIES;
use chat4all_tests::{TestSystem, send_and_wait, send_request};
use tokio_util::sync::CancellationToken;

const PLATFORMS: [&str; 5] = ["whatsapp", "instagram", "messenger", "telegram", "chotot"];

/// promtool, which `.ci/run` installs; a missing one fails the test, as a
/// skipped check would pass unseen.
fn promtool() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "promtool is not on PATH: install it with \
                 `apt-get install -y --no-install-recommends prometheus` (.ci/run does)"
            )
        })
}

fn promtool_check(promtool: &Path, exposition: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics exited {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series `name` with `labels` (among others), if it is
/// exposed; histograms and summaries count as their sample count.
fn series(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(exposition.lines().map(|l| Ok(l.to_owned()))).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
}

fn assert_series(exposition: &str, name: &str, labels: &[(&str, &str)]) {
    assert!(
        series(exposition, name, labels).is_some(),
        "{name}{labels:?} is not exposed:\n{exposition}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_systems_metrics_pass_promtool_and_alerted_series_exist_from_start_up() {
    let promtool = promtool();
    // The recorder, with every family's help, before any service records.
    let _ = chat4all_telemetry::metrics_handle();
    let t = TestSystem::start().await.unwrap();
    t.system.ready(Duration::from_secs(30)).await.unwrap();
    let stop_metrics = CancellationToken::new();
    let endpoint = MetricsEndpoint::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
    let addr = endpoint.local_addr();
    tokio::spawn(endpoint.run(stop_metrics.clone()));

    // Before any message: what the README says is measured, and what an
    // `increase()` alert watches, for every platform.
    let start = scrape(addr).await;
    promtool_check(&promtool, &start);
    assert_series(&start, "chat4all_accept_duration_seconds", &[]);
    assert_series(&start, "chat4all_messages_rejected_total", &[]);
    for platform in PLATFORMS {
        let p = [("platform", platform)];
        assert_series(
            &start,
            "chat4all_messages_total",
            &[("platform", platform), ("status", "FAILED")],
        );
        assert_series(&start, "chat4all_accept_to_sent_seconds", &p);
        assert_series(&start, "chat4all_accept_to_delivered_seconds", &p);
        assert_series(&start, "chat4all_platform_call_duration_seconds", &p);
        for kind in ["permanent", "transient", "rate_limited", "adapter"] {
            assert_series(
                &start,
                "chat4all_platform_call_failures_total",
                &[("platform", platform), ("kind", kind)],
            );
        }
        assert_series(&start, "chat4all_platform_retries_total", &p);
        assert_series(&start, "chat4all_rate_limit_waits_total", &p);
        assert_series(&start, "chat4all_breaker_state", &p);
        assert_series(
            &start,
            "chat4all_breaker_transitions_total",
            &[("platform", platform), ("to", "open")],
        );
        assert_series(&start, "chat4all_inbound_duplicates_total", &p);
        assert_series(
            &start,
            "chat4all_adapter_sends_total",
            &[("platform", platform), ("outcome", "permanent")],
        );
        let outbound = format!("{platform}-outbound");
        assert_series(&start, "chat4all_dead_letters_total", &[("topic", &outbound)]);
    }
    // Where receipts come, and only there.
    for platform in ["whatsapp", "messenger", "instagram"] {
        let p = [("platform", platform)];
        assert_series(&start, "chat4all_receipts_overdue_total", &p);
        assert_series(&start, "chat4all_messages_awaiting_receipt_overdue", &p);
    }
    assert!(
        series(
            &start,
            "chat4all_receipts_overdue_total",
            &[("platform", "telegram")]
        )
        .is_none()
    );
    assert_series(
        &start,
        "chat4all_echoes_total",
        &[("platform", "messenger"), ("ours", "false")],
    );
    assert_series(&start, "chat4all_loop_guard_trips_total", &[]);

    // Traffic: a message to each platform, a refusal, a request refused.
    let mut client = t.client().await.unwrap();
    let recipients = [
        "whatsapp:15550000001",
        "instagram:17841400000000001",
        "messenger:24000000000000001",
        "telegram:123456789",
        "chotot:ch-1001",
    ];
    for recipient in recipients {
        let m = send_and_wait(
            &mut client,
            recipient,
            "hi",
            pb::DeliveryStatus::Sent,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert!(m.status >= pb::DeliveryStatus::Sent as i32, "{recipient}: {m:?}");
    }
    // The simulator refuses recipients starting 999 (131026, undeliverable).
    send_and_wait(
        &mut client,
        "whatsapp:9990001112",
        "to nobody",
        pb::DeliveryStatus::Failed,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let refused = client.send_message(send_request("nowhere:1", "", "")).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);

    // Lag comes with librdkafka's statistics, every 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let after = loop {
        let after = scrape(addr).await;
        if series(&after, "chat4all_consumer_lag_records", &[]).is_some()
            || tokio::time::Instant::now() > deadline
        {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    promtool_check(&promtool, &after);
    assert_series(&after, "chat4all_consumer_lag_records", &[]);
    let failures = [("platform", "whatsapp"), ("kind", "permanent")];
    assert_eq!(
        series(&after, "chat4all_platform_call_failures_total", &failures),
        Some(1.0)
    );
    assert_eq!(
        series(
            &after,
            "chat4all_platform_errors_total",
            &[("platform", "whatsapp"), ("code", "131026")]
        ),
        Some(1.0)
    );
    assert_eq!(series(&after, "chat4all_messages_rejected_total", &[]), Some(1.0));

    stop_metrics.cancel();
    let TestSystem { system, dir } = t;
    system.stop().await.unwrap();
    drop(dir);
}

/// Every family name written in the workspace's sources: the first
/// argument of `counter!`, `gauge!` and `histogram!`, a string or a const
/// of the same file.
fn recorded_families(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                for family in families_in(&source) {
                    found.entry(family).or_insert_with(|| path.clone());
                }
            }
        }
    }
    found
}

fn families_in(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for macro_name in ["counter!(", "gauge!(", "histogram!("] {
        for (at, _) in source.match_indices(macro_name) {
            // `describe_counter!(` and the like describe, not record.
            if source[..at].ends_with('_') {
                continue;
            }
            let argument = source[at + macro_name.len()..].trim_start();
            let name = match argument.strip_prefix('"') {
                Some(rest) => rest.split('"').next().map(str::to_owned),
                None => {
                    let ident: String = argument
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    const_value(source, &ident)
                }
            };
            if let Some(name) = name.filter(|n| n.starts_with("chat4all_")) {
                names.push(name);
            }
        }
    }
    names
}

fn const_value(source: &str, ident: &str) -> Option<String> {
    let declaration = format!("const {ident}: &str = \"");
    let at = source.find(&declaration)? + declaration.len();
    source[at..].split('"').next().map(str::to_owned)
}

#[test]
fn every_family_recorded_anywhere_has_its_help_in_the_catalog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let recorded = recorded_families(root);
    assert!(recorded.len() > 30, "the scan found too little: {recorded:?}");
    let catalog: BTreeSet<&str> = FAMILIES.iter().map(|f| f.name).collect();
    let missing: Vec<_> = recorded
        .iter()
        .filter(|(name, _)| !catalog.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in telemetry/src/metric_catalog.rs: {missing:?}"
    );

    // The README's metric names, if it gives any, are real families.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for word in readme.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        // `chat4all_*` is a pattern, not a family.
        if word.starts_with("chat4all_") && !word.ends_with('_') {
            assert!(
                catalog.contains(word),
                "README.md names {word}, which no service records"
            );
        }
    }
}
