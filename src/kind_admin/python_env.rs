//! A Python kind's own virtual environment at `kind install`, with the
//! Python SDK installed from the copy inside this binary (no registry).

use super::install::run;
use super::python_files::SDK_FILES;
use std::path::Path;

/// A virtual environment in `dir/venv` with the embedded SDK installed.
pub(super) fn python_environment(dir: &Path) -> Result<(), String> {
    run(
        std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir.join("venv")),
        "python3 -m venv",
    )?;
    let scratch = dir.join(".villas-kind-sdk");
    let root = scratch.join("villas-kind");
    for (path, bytes) in SDK_FILES {
        let file = root.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    }
    let installed = run(
        std::process::Command::new(dir.join("venv/bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--disable-pip-version-check",
            ])
            .arg(&root),
        "installing the Python SDK into the kind's environment",
    );
    let _ = std::fs::remove_dir_all(&scratch);
    installed
}
