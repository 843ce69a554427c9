//! `kind list`: the built-in kinds, then the installed ones with their
//! package names and versions.

use super::{read_toml, SERVED};
use crate::settings::installed::MANIFEST;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use villas_sdk::Kind;

pub(super) fn list(state_dir: &Path, builtin: &[Arc<dyn Kind>]) -> Result<(), String> {
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
        let manifest = read_toml(&dir.join(MANIFEST))?;
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
