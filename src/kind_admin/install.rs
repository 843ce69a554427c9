//! `kind install PATH`: copies an executable, or a directory with a
//! manifest (a Python project with its own virtual environment, a Cargo
//! project built first with its executables in `bin/`), into
//! `state_dir/kinds/<name>/`, then checks it by starting it once.

use super::cargo_build;
use super::python_env::python_environment;
use super::{read_toml, valid_name, SERVED};
use crate::settings::installed::{installed_kinds, MANIFEST};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `name` of a manifest.
fn manifest_name(manifest: &Path) -> Result<String, String> {
    read_toml(manifest)?
        .get("name")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no name", manifest.display()))
}

/// A copy of a kind's sources without what is built or made locally.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some(
                "venv"
                    | ".venv"
                    | ".git"
                    | "__pycache__"
                    | "target"
                    | ".mypy_cache"
                    | ".pytest_cache"
            )
        ) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

pub(super) fn run(command: &mut std::process::Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

pub(super) fn install(path: &Path, profile: &str, state_dir: &Path) -> Result<(), String> {
    let kinds = state_dir.join("kinds");
    std::fs::create_dir_all(&kinds).map_err(|e| format!("{}: {e}", kinds.display()))?;
    let (name, source_is_dir) = if path.is_dir() {
        (manifest_name(&path.join(MANIFEST))?, true)
    } else if path.is_file() {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: no usable file name", path.display()))?;
        (stem.to_owned(), false)
    } else {
        return Err(format!(
            "{}: neither an executable nor a directory",
            path.display()
        ));
    };
    if !valid_name(&name) {
        return Err(format!(
            "{name:?} is not a valid kind name (letters, digits, - _ .)"
        ));
    }
    let target = kinds.join(&name);
    if target.exists() {
        return Err(format!(
            "{name} is installed already (kind remove {name} first)"
        ));
    }
    // A Cargo project is built where it is (its target directory reused).
    let executables = if source_is_dir && path.join("Cargo.toml").is_file() {
        cargo_build::build(path, profile)?
    } else {
        Vec::new()
    };
    let staging = kinds.join(format!(".{name}.installing"));
    let _ = std::fs::remove_dir_all(&staging);
    let prepared = (|| -> Result<(), String> {
        if source_is_dir {
            copy_dir(path, &staging).map_err(|e| format!("copying {}: {e}", path.display()))?;
            if staging.join("pyproject.toml").is_file() {
                python_environment(&staging)?;
            }
            if !executables.is_empty() {
                let bin = staging.join("bin");
                std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
                for executable in &executables {
                    let file = executable
                        .file_name()
                        .map(PathBuf::from)
                        .unwrap_or_default();
                    std::fs::copy(executable, bin.join(&file))
                        .map_err(|e| format!("{}: {e}", executable.display()))?;
                }
            }
        } else {
            std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
            let file = path.file_name().map(PathBuf::from).unwrap_or_default();
            std::fs::copy(path, staging.join(&file)).map_err(|e| e.to_string())?;
            let manifest = format!(
                "name = {name:?}\nversion = \"0.0.0\"\ncommand = [{:?}]\n",
                format!("./{}", file.display())
            );
            std::fs::write(staging.join(MANIFEST), manifest).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&staging, &target).map_err(|e| e.to_string())
    })();
    if let Err(error) = prepared {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    // Checked by starting it once, where it will run.
    let checked = check(&target, state_dir);
    match checked {
        Ok(served) => {
            let _ = std::fs::write(target.join(SERVED), served.join("\n") + "\n");
            println!("installed {name}: serves {}", served.join(", "));
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&target);
            Err(format!("{name} does not start as a kind process: {error}"))
        }
    }
}

/// Starts the installed kind in `dir` once; the kinds it serves.
fn check(dir: &Path, state_dir: &Path) -> Result<Vec<String>, String> {
    let spec = installed_kinds(state_dir)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|spec| spec.working_dir.as_deref() == Some(dir))
        .ok_or_else(|| format!("{}: no manifest", dir.display()))?;
    let kinds = villas_actors::process::start(spec, env!("CARGO_PKG_VERSION"))
        .map_err(|e| e.to_string())?;
    let served = kinds
        .iter()
        .map(|k| format!("{}/{}", k.category(), k.type_name()))
        .collect();
    if let Some(kind) = kinds.first() {
        kind.drain(Duration::from_secs(3));
    }
    Ok(served)
}
