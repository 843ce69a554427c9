//! A Cargo kind project at `kind install`: built with `cargo build` (the
//! chosen profile; cargo's own settings such as `CARGO_TARGET_DIR` or
//! `CARGO_NET_OFFLINE` apply), the executables it built read from cargo's
//! JSON messages.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds the project in `dir` with `profile`; the executables of its
/// binary targets. Cargo's diagnostics go to stderr as they come.
pub(super) fn build(dir: &Path, profile: &str) -> Result<Vec<PathBuf>, String> {
    // The cargo that ran us (tests), else the one on PATH.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = dir.join("Cargo.toml");
    let output = Command::new(&cargo)
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "--profile",
        ])
        .arg(profile)
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build of {} failed ({}; its messages are above)",
            manifest.display(),
            output.status
        ));
    }
    let executables: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        })
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .collect();
    if executables.is_empty() {
        return Err(format!("{} builds no executable", manifest.display()));
    }
    Ok(executables)
}
