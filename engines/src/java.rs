//! Which `java` runs an engine.
//!
//! Engines support only some Java releases (Cassandra 5.0 refuses to start
//! on Java 21 and later), and a machine may have several: the version is
//! checked before anything starts, so a wrong one is named in the error
//! rather than buried in the engine's log.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::EngineError;

/// A `java` executable and the Java release it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Java {
    pub(crate) path: PathBuf,
    pub(crate) major: u32,
}

/// `explicit` if given (it must be supported), else the first supported
/// of `$JAVA_HOME/bin/java` and the `java` on the PATH.
pub(crate) fn find(
    explicit: Option<&Path>,
    supported: &[u32],
    engine: &str,
    override_var: &str,
) -> Result<Java, EngineError> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(java) => vec![java.to_owned()],
        None => std::env::var_os("JAVA_HOME")
            .map(|home| PathBuf::from(home).join("bin/java"))
            .filter(|java| java.is_file())
            .into_iter()
            .chain([PathBuf::from("java")])
            .collect(),
    };
    let wanted = supported
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    let mut found = Vec::new();
    for path in candidates {
        match major_version(&path) {
            Ok(major) if supported.contains(&major) => return Ok(Java { path, major }),
            Ok(major) => found.push(format!("{} is Java {major}", path.display())),
            Err(e) => found.push(e),
        }
    }
    if found.iter().all(|f| f.ends_with(NOT_FOUND)) {
        return Err(EngineError::Missing {
            tool: "java",
            how: format!(
                "{engine} needs a Java {wanted} runtime (Debian: `apt-get install openjdk-17-jre-headless`); \
                 put its `java` on the PATH, or name it with JAVA_HOME or {override_var}"
            ),
        });
    }
    Err(EngineError::Failed(format!(
        "{engine} runs on Java {wanted} only, and {}; install one (Debian: `apt-get install \
         openjdk-17-jre-headless`) and name its bin/java with {override_var} or JAVA_HOME",
        found.join(", ")
    )))
}

const NOT_FOUND: &str = "not found";

/// The major version `java -version` reports.
fn major_version(java: &Path) -> Result<u32, String> {
    let output = Command::new(java)
        .arg("-version")
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{} {NOT_FOUND}", java.display()),
            _ => format!("{} could not run: {e}", java.display()),
        })?;
    // `java -version` writes to stderr.
    let text = String::from_utf8_lossy(&output.stderr);
    parse_major(&text).ok_or_else(|| format!("{} gave no version: {}", java.display(), text.trim()))
}

/// `openjdk version "17.0.15" …` → 17; `java version "1.8.0_292"` → 8.
fn parse_major(version_output: &str) -> Option<u32> {
    let quoted = version_output.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_old_style_and_new() {
        assert_eq!(
            parse_major("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment"),
            Some(17)
        );
        assert_eq!(parse_major("openjdk version \"25\" 2025-09-16"), Some(25));
        assert_eq!(parse_major("openjdk version \"21-ea\" 2023-09-19"), Some(21));
        assert_eq!(parse_major("java version \"1.8.0_292\""), Some(8));
        assert_eq!(parse_major("no quotes here"), None);
    }

    #[test]
    fn a_missing_java_is_named_as_missing() {
        let nowhere = Path::new("/nonexistent/bin/java");
        match find(Some(nowhere), &[17], "Cassandra", "X_JAVA") {
            Err(EngineError::Missing { tool, how }) => {
                assert_eq!(tool, "java");
                assert!(how.contains("X_JAVA"), "{how}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unsupported_java_is_refused_by_version() {
        // The `java` running these tests, whatever it is, is not Java 1.
        match find(None, &[1], "Cassandra", "X_JAVA") {
            Err(EngineError::Failed(why)) => assert!(why.contains("runs on Java 1 only"), "{why}"),
            // No java on this machine at all: named as missing instead.
            Err(EngineError::Missing { tool: "java", .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
