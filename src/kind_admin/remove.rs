//! `kind remove NAME [--force]`: refused while stored components of the
//! kinds it serves exist.

use super::{valid_name, SERVED};
use crate::settings::installed::MANIFEST;
use std::path::Path;

pub(super) fn remove(name: &str, force: bool, state_dir: &Path) -> Result<(), String> {
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
