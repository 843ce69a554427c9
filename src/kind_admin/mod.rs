//! `villas-controller kind install PATH | list | new NAME | remove NAME`:
//! the kinds installed in the state directory (`state_dir/kinds/<name>/`,
//! see `settings::installed`), and new kind projects from the templates.
//! Installing copies the kind there (an executable, or a directory with a
//! `villas-kind.toml` manifest; a Python project gets a virtual environment
//! of its own with the Python SDK installed from the copy inside this
//! binary, so no registry is needed; a Cargo project is built first and its
//! executables installed in `bin/`) and checks it by starting it once. A
//! running daemon picks installed kinds up at SIGHUP.

mod cargo_build;
mod install;
mod list;
mod new;
mod new_rust;
mod python_env;
mod python_files;
mod remove;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use villas_sdk::Kind;

/// `kind ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KindCommand {
    /// Install a kind: an executable, or a directory with a villas-kind.toml
    /// manifest (a Python project gets its own virtual environment with
    /// the SDK; a Cargo project is built with cargo and its executables
    /// installed in bin/).
    Install {
        /// The executable or the directory.
        path: PathBuf,
        /// The cargo profile a Cargo project is built with.
        #[arg(long, default_value = "release")]
        profile: String,
    },
    /// List the built-in and the installed kinds.
    List,
    /// Write a new kind project into ./NAME (a kind serving
    /// simulator/NAME with start and stop, its tests, a README, packaging
    /// metadata).
    New {
        /// Its name: ^[a-z][a-z0-9_]{0,63}$.
        name: String,
        /// Its language.
        #[arg(long, value_parser = ["python", "rust"])]
        lang: String,
        /// Rust: the villas-sdk sources the project depends on (a path
        /// dependency); default: this binary's source tree's sdk/ if it
        /// exists, else the SDK's version from the registry.
        #[arg(long)]
        sdk: Option<PathBuf>,
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

/// The file listing what an installed kind serves (`category/type` lines),
/// written by the check at install.
const SERVED: &str = "served.txt";

/// Runs a `kind` command against `state_dir`.
pub(crate) fn main(command: KindCommand, state_dir: &Path, builtin: &[Arc<dyn Kind>]) -> ExitCode {
    let outcome = match command {
        KindCommand::Install { path, profile } => install::install(&path, &profile, state_dir),
        KindCommand::List => list::list(state_dir, builtin),
        KindCommand::Remove { name, force } => remove::remove(&name, force, state_dir),
        KindCommand::New { name, lang, sdk } => {
            new::new_project(&name, &lang, sdk.as_deref(), Path::new("."))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("villas-controller kind: {message}");
            ExitCode::FAILURE
        }
    }
}

/// An installed kind's name: letters, digits, `-`, `_`, `.`, not hidden.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A manifest (or any TOML file), read as JSON.
fn read_toml(path: &Path) -> Result<serde_json::Value, String> {
    config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| format!("{}: {e}", path.display()))
}
