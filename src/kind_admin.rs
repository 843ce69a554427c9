//! `villas-controller kind install PATH | list | remove NAME [--force]`:
//! the kinds installed in the state directory (`state_dir/kinds/<name>/`,
//! see `settings::installed`). Installing copies the kind there (an
//! executable, or a directory with a `villas-kind.toml` manifest; a Python
//! project gets a virtual environment of its own with the Python SDK
//! installed from the copy inside this binary, so no registry is needed)
//! and checks it by starting it once. A running daemon picks installed
//! kinds up at its next start.

use crate::settings::installed::{installed_kinds, MANIFEST};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use villas_sdk::Kind;

/// `kind ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KindCommand {
    /// Install a kind: an executable, or a directory with a villas-kind.toml
    /// manifest (a Python project gets its own virtual environment with
    /// the SDK).
    Install {
        /// The executable or the directory.
        path: PathBuf,
    },
    /// List the built-in and the installed kinds.
    List,
    /// Write a new kind project into ./NAME (a kind serving
    /// simulator/NAME with start and stop, its tests, a README, packaging
    /// metadata).
    New {
        /// Its name: ^[a-z][a-z0-9_]{0,63}$.
        name: String,
        /// Its language (only python for now).
        #[arg(long, value_parser = ["python", "rust"])]
        lang: String,
    },
    /// Remove an installed kind (refused while components of its kinds are
    /// stored, unless --force).
    Remove {
        /// The installed kind's name.
        name: String,
        /// Remove it even if components of its kinds exist.
        #[arg(long)]
        force: bool,
    },
}

/// The SDK files the binary carries (python/embedded-files.txt, [sdk]).
const SDK_FILES: [(&str, &[u8]); 12] = [
    (
        "pyproject.toml",
        include_bytes!("../python/villas-kind/pyproject.toml"),
    ),
    (
        "README.md",
        include_bytes!("../python/villas-kind/README.md"),
    ),
    (
        "build_backend/villas_kind_build.py",
        include_bytes!("../python/villas-kind/build_backend/villas_kind_build.py"),
    ),
    (
        "src/villas_kind/__init__.py",
        include_bytes!("../python/villas-kind/src/villas_kind/__init__.py"),
    ),
    (
        "src/villas_kind/context.py",
        include_bytes!("../python/villas-kind/src/villas_kind/context.py"),
    ),
    (
        "src/villas_kind/instance.py",
        include_bytes!("../python/villas-kind/src/villas_kind/instance.py"),
    ),
    (
        "src/villas_kind/kind.py",
        include_bytes!("../python/villas-kind/src/villas_kind/kind.py"),
    ),
    (
        "src/villas_kind/protocol.py",
        include_bytes!("../python/villas-kind/src/villas_kind/protocol.py"),
    ),
    (
        "src/villas_kind/py.typed",
        include_bytes!("../python/villas-kind/src/villas_kind/py.typed"),
    ),
    (
        "src/villas_kind/server.py",
        include_bytes!("../python/villas-kind/src/villas_kind/server.py"),
    ),
    (
        "src/villas_kind/testing.py",
        include_bytes!("../python/villas-kind/src/villas_kind/testing.py"),
    ),
    (
        "src/villas_kind/wire.py",
        include_bytes!("../python/villas-kind/src/villas_kind/wire.py"),
    ),
];

/// The Python template (python/embedded-files.txt, [template]): paths and
/// contents with `{{name}}` placeholders.
const PYTHON_TEMPLATE: [(&str, &[u8]); 9] = [
    (
        ".gitignore",
        include_bytes!("../python/template/.gitignore"),
    ),
    ("README.md", include_bytes!("../python/template/README.md")),
    (
        "pyproject.toml",
        include_bytes!("../python/template/pyproject.toml"),
    ),
    (
        "villas-kind.toml",
        include_bytes!("../python/template/villas-kind.toml"),
    ),
    (
        "{{name}}_kind/__init__.py",
        include_bytes!("../python/template/{{name}}_kind/__init__.py"),
    ),
    (
        "{{name}}_kind/__main__.py",
        include_bytes!("../python/template/{{name}}_kind/__main__.py"),
    ),
    (
        "{{name}}_kind/kind.py",
        include_bytes!("../python/template/{{name}}_kind/kind.py"),
    ),
    (
        "{{name}}_kind/py.typed",
        include_bytes!("../python/template/{{name}}_kind/py.typed"),
    ),
    (
        "tests/test_{{name}}.py",
        include_bytes!("../python/template/tests/test_{{name}}.py"),
    ),
];

/// `kind new NAME --lang python`: the template rendered into `./NAME`.
fn new_project(name: &str, lang: &str, into: &Path) -> Result<(), String> {
    let valid = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(format!(
            "{name:?} is not a valid name (^[a-z][a-z0-9_]{{0,63}}$)"
        ));
    }
    if lang != "python" {
        return Err("only --lang python is available yet".into());
    }
    let root = into.join(name);
    if root.exists() {
        return Err(format!("{} exists already", root.display()));
    }
    for (path, bytes) in PYTHON_TEMPLATE {
        let file = root.join(path.replace("{{name}}", name));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let text = String::from_utf8_lossy(bytes).replace("{{name}}", name);
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    println!(
        "wrote {} (simulator/{name}); install it with: villas-controller kind install {}",
        root.display(),
        root.display()
    );
    Ok(())
}

/// The file listing what an installed kind serves (`category/type` lines),
/// written by the check at install.
const SERVED: &str = "served.txt";

/// Runs a `kind` command against `state_dir`.
pub(crate) fn main(command: KindCommand, state_dir: &Path, builtin: &[Arc<dyn Kind>]) -> ExitCode {
    let outcome = match command {
        KindCommand::Install { path } => install(&path, state_dir),
        KindCommand::List => list(state_dir, builtin),
        KindCommand::Remove { name, force } => remove(&name, force, state_dir),
        KindCommand::New { name, lang } => new_project(&name, &lang, Path::new(".")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("villas-controller kind: {message}");
            ExitCode::FAILURE
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The `name` of a manifest (read as TOML).
fn manifest_name(manifest: &Path) -> Result<String, String> {
    let value: serde_json::Value = config::Config::builder()
        .add_source(config::File::from(manifest).format(config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no name", manifest.display()))
}

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

fn run(command: &mut std::process::Command, what: &str) -> Result<(), String> {
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

/// A virtual environment in `dir/venv` with the embedded SDK installed.
fn python_environment(dir: &Path) -> Result<(), String> {
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

fn install(path: &Path, state_dir: &Path) -> Result<(), String> {
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
    let staging = kinds.join(format!(".{name}.installing"));
    let _ = std::fs::remove_dir_all(&staging);
    let prepared = (|| -> Result<(), String> {
        if source_is_dir {
            copy_dir(path, &staging).map_err(|e| format!("copying {}: {e}", path.display()))?;
            if staging.join("pyproject.toml").is_file() {
                python_environment(&staging)?;
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

fn list(state_dir: &Path, builtin: &[Arc<dyn Kind>]) -> Result<(), String> {
    for kind in builtin {
        println!(
            "{}/{}\tbuilt-in\t{}",
            kind.category(),
            kind.type_name(),
            env!("CARGO_PKG_VERSION")
        );
    }
    let kinds = state_dir.join("kinds");
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&kinds) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    for dir in dirs.iter().filter(|d| d.join(MANIFEST).is_file()) {
        let manifest: serde_json::Value = config::Config::builder()
            .add_source(config::File::from(dir.join(MANIFEST)).format(config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| e.to_string())?;
        let text = |key: &str| {
            manifest
                .get(key)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        let served = std::fs::read_to_string(dir.join(SERVED)).unwrap_or_default();
        for kind in served.lines().filter(|l| !l.is_empty()) {
            println!("{kind}\tinstalled {}\t{}", text("name"), text("version"));
        }
    }
    Ok(())
}

fn remove(name: &str, force: bool, state_dir: &Path) -> Result<(), String> {
    if !valid_name(name) {
        return Err(format!("{name:?} is not a valid kind name"));
    }
    let dir = state_dir.join("kinds").join(name);
    if !dir.join(MANIFEST).is_file() {
        return Err(format!("{name} is not installed"));
    }
    let served: Vec<String> = std::fs::read_to_string(dir.join(SERVED))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let users = stored_components_of(state_dir, &served);
    if !users.is_empty() && !force {
        return Err(format!(
            "{} component(s) of {name} exist ({}): delete them first, or --force",
            users.len(),
            users.join(", ")
        ));
    }
    std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!("removed {name}");
    Ok(())
}

/// The uuids of stored components whose `category/type` is in `served`.
fn stored_components_of(state_dir: &Path, served: &[String]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("components")) else {
        return Vec::new();
    };
    let mut users = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Ok(text) = std::fs::read(entry.path().join("component.json")) else {
            continue;
        };
        let Ok(definition) = serde_json::from_slice::<serde_json::Value>(&text) else {
            continue;
        };
        let properties = &definition["properties"];
        let kind = format!(
            "{}/{}",
            properties["category"].as_str().unwrap_or(""),
            properties["type"].as_str().unwrap_or("")
        );
        if served.contains(&kind) {
            users.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    users.sort();
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded files are exactly python/embedded-files.txt's.
    #[test]
    fn embedded_files_follow_the_list() {
        let list = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python/embedded-files.txt"
        ))
        .unwrap();
        let mut section = "";
        let (mut sdk, mut template) = (Vec::new(), Vec::new());
        for line in list.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                section = if line == "[sdk]" { "sdk" } else { "template" };
                continue;
            }
            match section {
                "sdk" => sdk.push(line.trim_start_matches("villas-kind/").to_owned()),
                _ => template.push(line.trim_start_matches("template/").to_owned()),
            }
        }
        let embedded_sdk: Vec<String> = SDK_FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        let embedded_template: Vec<String> = PYTHON_TEMPLATE
            .iter()
            .map(|(p, _)| (*p).to_owned())
            .collect();
        assert_eq!(embedded_sdk, sdk);
        assert_eq!(embedded_template, template);
    }
}
