//! The kinds installed in the state directory: `<state_dir>/kinds/<name>/`
//! holds a kind's files and its manifest `villas-kind.toml` (name, version,
//! command relative to that directory, environment, request_timeout); the
//! daemon starts each at start-up as a kind process, in that directory,
//! with `python` as the interpreter of the kind's own virtual environment
//! (`venv/`) when it has one.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use villas_actors::process::KindProcessSpec;

/// The manifest's file name.
pub(crate) const MANIFEST: &str = "villas-kind.toml";

/// `villas-kind.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// The kind package's name (its directory's name too).
    name: String,
    /// Its version.
    version: String,
    /// argv, relative to the kind's directory.
    command: Vec<String>,
    /// Seconds per request.
    #[serde(default)]
    request_timeout: Option<f64>,
    /// Variables set for the process.
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

/// Why an installed kind cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub(crate) struct ManifestError {
    path: PathBuf,
    message: String,
}

/// The kind processes of every kind installed under `state_dir/kinds`
/// (none if the directory does not exist), sorted by name.
pub(crate) fn installed_kinds(state_dir: &Path) -> Result<Vec<KindProcessSpec>, ManifestError> {
    let root = state_dir.join("kinds");
    let error = |path: &Path, message: String| ManifestError {
        path: path.to_owned(),
        message,
    };
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error(&root, e.to_string())),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join(MANIFEST).is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|dir| spec_of(dir, state_dir)).collect()
}

fn spec_of(dir: &Path, state_dir: &Path) -> Result<KindProcessSpec, ManifestError> {
    let path = dir.join(MANIFEST);
    let error = |message: String| ManifestError {
        path: path.clone(),
        message,
    };
    let manifest: Manifest = config::Config::builder()
        .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| error(e.to_string()))?;
    let mut argv = manifest.command.into_iter();
    let Some(program) = argv.next().filter(|p| !p.is_empty()) else {
        return Err(error("command must name an executable".into()));
    };
    let venv_python = dir.join("venv/bin/python");
    let program = if program == "python" && venv_python.is_file() {
        venv_python
    } else if program.contains('/') {
        dir.join(program)
    } else {
        PathBuf::from(program)
    };
    let mut spec = KindProcessSpec::new(manifest.name.clone(), program);
    spec.args = argv.collect();
    spec.working_dir = Some(dir.to_owned());
    spec.env = manifest.environment.into_iter().collect();
    spec.env
        .push(("VILLAS_KIND_NAME".into(), manifest.name.clone()));
    spec.env.push((
        "VILLAS_STATE_DIR".into(),
        state_dir.to_string_lossy().into_owned(),
    ));
    if let Some(seconds) = manifest.request_timeout {
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
            return Err(error(format!(
                "request_timeout must be between 0 and 3600 seconds, not {seconds}"
            )));
        }
        spec.request_timeout = Duration::from_secs_f64(seconds);
    }
    tracing::info!(kind = %manifest.name, version = %manifest.version, dir = %dir.display(), "installed kind");
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_installed_manifests() {
        let state = tempfile::tempdir().unwrap();
        assert!(installed_kinds(state.path()).unwrap().is_empty());
        let dir = state.path().join("kinds/clock");
        std::fs::create_dir_all(dir.join("venv/bin")).unwrap();
        std::fs::write(dir.join("venv/bin/python"), "").unwrap();
        std::fs::write(
            dir.join(MANIFEST),
            "name = \"clock\"\nversion = \"0.1.0\"\ncommand = [\"python\", \"-m\", \"clock_kind\"]\nrequest_timeout = 3\n[environment]\nPYTHONFAULTHANDLER = \"1\"\n",
        )
        .unwrap();
        let specs = installed_kinds(state.path()).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].command, dir.join("venv/bin/python"));
        assert_eq!(specs[0].args, ["-m", "clock_kind"]);
        assert_eq!(specs[0].working_dir.as_deref(), Some(dir.as_path()));
        assert_eq!(specs[0].request_timeout, Duration::from_secs(3));
        assert!(specs[0]
            .env
            .contains(&("PYTHONFAULTHANDLER".into(), "1".into())));
        std::fs::write(
            dir.join(MANIFEST),
            "name = \"clock\"\nversion = \"1\"\ncommand = []\n",
        )
        .unwrap();
        assert!(installed_kinds(state.path()).is_err());
    }
}
