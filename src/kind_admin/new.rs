//! `kind new NAME --lang python|rust`: a template rendered into `./NAME`,
//! every `{{name}}` in each path and file replaced by NAME (and, for
//! Rust, `{{sdk}}` by the villas-sdk dependency).

use super::new_rust;
use super::python_files::PYTHON_TEMPLATE;
use std::path::Path;

/// A template's files: paths and contents, with placeholders.
type Files = &'static [(&'static str, &'static [u8])];

/// Writes the project `name` in `lang` into `into/name`.
pub(super) fn new_project(
    name: &str,
    lang: &str,
    sdk: Option<&Path>,
    into: &Path,
) -> Result<(), String> {
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
    let root = into.join(name);
    if root.exists() {
        return Err(format!("{} exists already", root.display()));
    }
    let (files, replacements): (Files, Vec<(&str, String)>) = match lang {
        "python" => (&PYTHON_TEMPLATE, vec![("{{name}}", name.to_owned())]),
        "rust" => (
            &new_rust::RUST_TEMPLATE,
            vec![
                ("{{name}}", name.to_owned()),
                ("{{sdk}}", new_rust::sdk_dependency(sdk)?),
            ],
        ),
        other => return Err(format!("no template for --lang {other}")),
    };
    for (path, bytes) in files {
        let mut file_path = path.replace("{{name}}", name);
        if let Some(stripped) = file_path.strip_suffix(".in") {
            file_path = stripped.to_owned();
        }
        let file = root.join(file_path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for (placeholder, value) in &replacements {
            text = text.replace(placeholder, value);
        }
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    println!(
        "wrote {} (simulator/{name}); install it with: villas-controller kind install {}",
        root.display(),
        root.display()
    );
    Ok(())
}
