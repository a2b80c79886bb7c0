//! An engine's jars, fetched from Maven Central once and kept under
//! `target/engines/<name>/libs`.
//!
//! A pom (kept in `tests/engines/<name>/` and compiled into this crate)
//! names the engine and its version; `mvn dependency:copy-dependencies`
//! copies it with everything it needs. The pom is copied beside the jars
//! once they are complete, so a later run knows whether they came from the
//! same pom: a changed version is fetched again, an unchanged one never.
//! Test binaries start engines in parallel, so one fetches under a file
//! lock while the others wait for it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::EngineError;

/// Where engines keep their jars and other downloads: `engines/` in the
/// target directory of the workspace this crate was built in.
pub fn engines_dir() -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("engines")
}

/// One engine's jars, as a pom names them.
#[derive(Debug, Clone, Copy)]
pub struct Jars<'a> {
    /// The engine's directory under [`engines_dir`].
    pub name: &'a str,
    /// The pom's text.
    pub pom: &'a str,
    /// How the engine's own jar's file name starts (`cassandra-all-`): a
    /// directory without it is not a copy of this engine.
    pub main_jar: &'a str,
}

impl Jars<'_> {
    /// The directory of the jars, fetched first when it is missing or came
    /// from another pom. Blocking, and slow the first time (Maven downloads
    /// tens of megabytes).
    pub fn locate(&self) -> Result<PathBuf, EngineError> {
        let root = engines_dir().join(self.name);
        let libs = root.join("libs");
        let stamp = root.join("pom.xml");
        let current = || {
            has_jar(&libs, self.main_jar) && std::fs::read_to_string(&stamp).is_ok_and(|had| had == self.pom)
        };
        if current() {
            return Ok(libs);
        }
        std::fs::create_dir_all(&root).map_err(EngineError::io(format!("creating {}", root.display())))?;
        let lock_path = root.join(".lock");
        let lock =
            File::create(&lock_path).map_err(EngineError::io(format!("creating {}", lock_path.display())))?;
        lock.lock()
            .map_err(EngineError::io(format!("locking {}", lock_path.display())))?;
        // Another process may have fetched them while this one waited.
        if current() {
            return Ok(libs);
        }
        let fetch = root.join("fetch");
        std::fs::create_dir_all(&fetch).map_err(EngineError::io(format!("creating {}", fetch.display())))?;
        let pom = fetch.join("pom.xml");
        std::fs::write(&pom, self.pom).map_err(EngineError::io(format!("writing {}", pom.display())))?;
        // Copied aside and renamed, so a fetch cut short never looks complete.
        let partial = root.join("libs.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let _ = std::fs::remove_dir_all(&libs);
        let mut mvn = Command::new("mvn");
        mvn.args(["-q", "-B", "-f"])
            .arg(&pom)
            .arg("dependency:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", partial.display()))
            .arg("-DincludeScope=runtime");
        let output = mvn.output().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EngineError::Missing {
                tool: "mvn",
                how: format!(
                    "install Apache Maven 3.8 or later (Debian: `apt-get install maven`); it copies \
                     {}'s jars from Maven Central into {} once",
                    self.name,
                    libs.display()
                ),
            },
            _ => EngineError::Io {
                context: format!("running {mvn:?}"),
                error: e,
            },
        })?;
        if !output.status.success() {
            return Err(EngineError::Failed(format!(
                "fetching {}'s jars with Maven failed ({}); it needs Maven Central. {mvn:?} said:\n{}{}",
                self.name,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        std::fs::rename(&partial, &libs)
            .map_err(EngineError::io(format!("moving the jars to {}", libs.display())))?;
        if !has_jar(&libs, self.main_jar) {
            return Err(EngineError::Failed(format!(
                "Maven ran, but left no {}*.jar in {}",
                self.main_jar,
                libs.display()
            )));
        }
        std::fs::write(&stamp, self.pom).map_err(EngineError::io(format!("writing {}", stamp.display())))?;
        Ok(libs)
    }
}

/// The file name of the jar in `dir` whose name starts with `prefix`.
pub(crate) fn find_jar(dir: &Path, prefix: &str) -> Option<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with(prefix) && name.ends_with(".jar"))
}

fn has_jar(dir: &Path, prefix: &str) -> bool {
    find_jar(dir, prefix).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_holds_an_engine_when_its_main_jar_is_there() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_jar(dir.path(), "cassandra-all-"));
        std::fs::write(dir.path().join("cassandra-all-5.0.9.jar"), b"").unwrap();
        std::fs::write(dir.path().join("guava-32.0.1-jre.jar"), b"").unwrap();
        assert_eq!(
            find_jar(dir.path(), "cassandra-all-").as_deref(),
            Some("cassandra-all-5.0.9.jar")
        );
        assert!(!has_jar(&dir.path().join("missing"), "cassandra-all-"));
    }
}
