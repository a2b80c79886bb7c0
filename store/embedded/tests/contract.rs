//! The store contract against the embedded backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chat4all_store::contract::run_all;
use chat4all_store_embedded::{EmbeddedOptions, EmbeddedStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_store_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("contract.db"), EmbeddedOptions::default()).unwrap();
    run_all(Arc::new(store.clone())).await;
    store.close().await;
}
