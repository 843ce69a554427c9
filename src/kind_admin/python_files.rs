//! The Python files the binary carries (python/embedded-files.txt): the
//! SDK `kind install` installs into a Python kind's virtual environment,
//! and the template `kind new --lang python` renders.

/// The SDK files the binary carries (python/embedded-files.txt, [sdk]).
pub(super) const SDK_FILES: [(&str, &[u8]); 12] = [
    (
        "pyproject.toml",
        include_bytes!("../../python/villas-kind/pyproject.toml"),
    ),
    (
        "README.md",
        include_bytes!("../../python/villas-kind/README.md"),
    ),
    (
        "build_backend/villas_kind_build.py",
        include_bytes!("../../python/villas-kind/build_backend/villas_kind_build.py"),
    ),
    (
        "src/villas_kind/__init__.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/__init__.py"),
    ),
    (
        "src/villas_kind/context.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/context.py"),
    ),
    (
        "src/villas_kind/instance.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/instance.py"),
    ),
    (
        "src/villas_kind/kind.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/kind.py"),
    ),
    (
        "src/villas_kind/protocol.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/protocol.py"),
    ),
    (
        "src/villas_kind/py.typed",
        include_bytes!("../../python/villas-kind/src/villas_kind/py.typed"),
    ),
    (
        "src/villas_kind/server.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/server.py"),
    ),
    (
        "src/villas_kind/testing.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/testing.py"),
    ),
    (
        "src/villas_kind/wire.py",
        include_bytes!("../../python/villas-kind/src/villas_kind/wire.py"),
    ),
];

/// The Python template (python/embedded-files.txt, [template]): paths and
/// contents with `{{name}}` placeholders.
pub(super) const PYTHON_TEMPLATE: [(&str, &[u8]); 9] = [
    (
        ".gitignore",
        include_bytes!("../../python/template/.gitignore"),
    ),
    (
        "README.md",
        include_bytes!("../../python/template/README.md"),
    ),
    (
        "pyproject.toml",
        include_bytes!("../../python/template/pyproject.toml"),
    ),
    (
        "villas-kind.toml",
        include_bytes!("../../python/template/villas-kind.toml"),
    ),
    (
        "{{name}}_kind/__init__.py",
        include_bytes!("../../python/template/{{name}}_kind/__init__.py"),
    ),
    (
        "{{name}}_kind/__main__.py",
        include_bytes!("../../python/template/{{name}}_kind/__main__.py"),
    ),
    (
        "{{name}}_kind/kind.py",
        include_bytes!("../../python/template/{{name}}_kind/kind.py"),
    ),
    (
        "{{name}}_kind/py.typed",
        include_bytes!("../../python/template/{{name}}_kind/py.typed"),
    ),
    (
        "tests/test_{{name}}.py",
        include_bytes!("../../python/template/tests/test_{{name}}.py"),
    ),
];

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
