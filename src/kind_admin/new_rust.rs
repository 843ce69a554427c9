//! The Rust template (`templates/rust/`, embedded): a Cargo project of its
//! own serving `simulator/NAME` through `villas_sdk::serve`, and the
//! villas-sdk dependency it gets (`{{sdk}}`).

use std::path::{Path, PathBuf};

/// The template's files (paths below templates/rust/; `{{name}}` in paths
/// and contents is replaced by NAME, a trailing `.in` dropped).
pub(super) const RUST_TEMPLATE: [(&str, &[u8]); 7] = [
    (
        ".gitignore",
        include_bytes!("../../templates/rust/.gitignore"),
    ),
    (
        "Cargo.toml.in",
        include_bytes!("../../templates/rust/Cargo.toml.in"),
    ),
    (
        "README.md",
        include_bytes!("../../templates/rust/README.md"),
    ),
    (
        "villas-kind.toml",
        include_bytes!("../../templates/rust/villas-kind.toml"),
    ),
    (
        "src/lib.rs",
        include_bytes!("../../templates/rust/src/lib.rs"),
    ),
    (
        "src/main.rs",
        include_bytes!("../../templates/rust/src/main.rs"),
    ),
    (
        "tests/{{name}}.rs",
        include_bytes!("../../templates/rust/tests/{{name}}.rs"),
    ),
];

/// The SDK's `major.minor`: the version requirement of a registry
/// dependency (Cargo's `^`, the SDK compatibility rule for `0.y`).
fn sdk_requirement() -> String {
    let version = villas_sdk::kind_protocol::SDK_VERSION;
    version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

/// The villas-sdk dependency's fields in the generated Cargo.toml: a path
/// to `sdk` (or to this binary's source tree's `sdk/` when it exists),
/// with the version requirement; else the version from the registry.
pub(super) fn sdk_dependency(sdk: Option<&Path>) -> Result<String, String> {
    let version = format!("version = \"{}\"", sdk_requirement());
    let path = match sdk {
        Some(path) => {
            if !path.join("Cargo.toml").is_file() {
                return Err(format!("--sdk {}: no Cargo.toml there", path.display()));
            }
            Some(
                std::fs::canonicalize(path)
                    .map_err(|e| format!("--sdk {}: {e}", path.display()))?,
            )
        }
        None => {
            let built_from = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/sdk"));
            built_from
                .join("Cargo.toml")
                .is_file()
                .then_some(built_from)
        }
    };
    Ok(match path {
        Some(path) => {
            let quoted = serde_json::to_string(&path.to_string_lossy())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            format!("path = {quoted}, {version}")
        }
        None => version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded files are exactly templates/rust/'s.
    #[test]
    fn embedded_files_are_the_template_directory() {
        fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, found);
                } else {
                    let relative = path.strip_prefix(root).unwrap();
                    found.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/rust");
        let mut found = Vec::new();
        walk(&root, &root, &mut found);
        found.sort();
        let mut embedded: Vec<String> = RUST_TEMPLATE.iter().map(|(p, _)| (*p).into()).collect();
        embedded.sort();
        assert_eq!(embedded, found);
    }

    #[test]
    fn the_sdk_dependency_is_a_path_in_the_source_tree_or_the_registry_version() {
        let default = sdk_dependency(None).unwrap();
        assert!(default.starts_with("path = \""), "{default}");
        assert!(default.ends_with(&format!("version = \"{}\"", sdk_requirement())));
        assert_eq!(sdk_requirement().matches('.').count(), 1);
        assert!(sdk_dependency(Some(Path::new("/nonexistent"))).is_err());
    }
}
