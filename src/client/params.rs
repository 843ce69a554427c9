//! The values of `-p/--parameters`, `-m/--model`, `-r/--results` (YAML or
//! JSON text) and their `-P`/`-M`/`-R` file forms, as the reference reads
//! them: each must be a mapping; the text's keys are updated by the
//! file's. Errors say where the text is wrong (line and column).

use super::ClientError;
use serde_json::{Map, Number, Value};
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// Reads one mapping from the inline `text` and/or the `file`, merged as
/// the reference merges them (the file's keys win). `None` when neither is
/// given. `flag` names the option in messages (`-p/--parameters`).
pub fn mapping(
    text: Option<&str>,
    file: Option<&Path>,
    flag: &str,
) -> Result<Option<Map<String, Value>>, ClientError> {
    if text.is_none() && file.is_none() {
        return Ok(None);
    }
    let mut merged = Map::new();
    if let Some(text) = text {
        merged.extend(parse_mapping(text, flag)?);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ClientError::BadInput(format!("{flag}: cannot read {}: {e}", path.display()))
        })?;
        let origin = format!("{flag} {}", path.display());
        merged.extend(parse_mapping(&text, &origin)?);
    }
    Ok(Some(merged))
}

/// Parses YAML or JSON text that must hold a mapping.
pub fn parse_mapping(text: &str, origin: &str) -> Result<Map<String, Value>, ClientError> {
    match parse_value(text, origin)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(ClientError::BadInput(format!(
            "{origin}: expected a mapping like {{runtime: 5}}, got {}",
            villas_sdk::protocol::action::json_type_name(&other)
        ))),
    }
}

/// Parses YAML or JSON text. Text that looks like JSON (starts with `{` or
/// `[`) and fails both parsers is reported with the JSON parser's
/// position; anything else with the YAML parser's.
pub fn parse_value(text: &str, origin: &str) -> Result<Value, ClientError> {
    let looks_like_json = text.trim_start().starts_with(['{', '[']);
    let json_error = if looks_like_json {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => return Ok(value),
            Err(error) => Some(error),
        }
    } else {
        None
    };
    let yaml_error = match YamlLoader::load_from_str(text) {
        Ok(documents) => match documents.into_iter().next() {
            Some(document) => return yaml_to_json(document, origin),
            None => return Ok(Value::Null),
        },
        Err(error) => error,
    };
    let message = match json_error {
        Some(error) => format!(
            "{origin}: not valid JSON: {} at line {} column {}",
            json_message(&error),
            error.line(),
            error.column()
        ),
        None => format!(
            "{origin}: not valid YAML or JSON: {} at line {} column {}",
            yaml_error.info(),
            yaml_error.marker().line(),
            yaml_error.marker().col() + 1
        ),
    };
    Err(ClientError::BadInput(message))
}

/// serde_json's message without its own " at line L column C" suffix.
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_owned(),
        None => text,
    }
}

/// A YAML node as JSON; mapping keys must be scalars.
fn yaml_to_json(node: Yaml, origin: &str) -> Result<Value, ClientError> {
    Ok(match node {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(text) => match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(number) => Value::Number(number),
            None => Value::String(text),
        },
        Yaml::String(s) => Value::String(s),
        Yaml::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| yaml_to_json(item, origin))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".into(),
                    _ => {
                        return Err(ClientError::BadInput(format!(
                            "{origin}: mapping keys must be strings or numbers"
                        )))
                    }
                };
                map.insert(key, yaml_to_json(value, origin)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(ClientError::BadInput(format!(
                "{origin}: YAML aliases are not supported"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(text: &str) -> Value {
        Value::Object(parse_mapping(text, "-p").unwrap())
    }

    #[test]
    fn yaml_and_json_give_the_same_mapping() {
        assert_eq!(parsed("runtime: 5"), json!({"runtime": 5}));
        assert_eq!(parsed("{runtime: 5}"), json!({"runtime": 5}));
        assert_eq!(parsed(r#"{"runtime": 5.5}"#), json!({"runtime": 5.5}));
        assert_eq!(
            parsed("argv: [a, 'b c']\nshell: false\nx: ~"),
            json!({"argv": ["a", "b c"], "shell": false, "x": null})
        );
    }

    #[test]
    fn errors_carry_line_and_column() {
        let error = parse_mapping("{\"runtime\": 5,,}", "-p").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("line 1 column"), "{text}");
        assert!(matches!(error, ClientError::BadInput(_)));
        let error = parse_mapping("a: 1\n b: [2", "-p").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn a_scalar_is_not_a_mapping() {
        let error = parse_mapping("5", "-p").unwrap_err().to_string();
        assert!(error.contains("expected a mapping"), "{error}");
    }

    #[test]
    fn the_file_updates_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, "runtime: 9\nextra: 1\n").unwrap();
        let merged = mapping(Some("runtime: 5\nkeep: 2"), Some(&path), "-p")
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(merged),
            json!({"runtime": 9, "keep": 2, "extra": 1})
        );
        assert!(mapping(None, None, "-p").unwrap().is_none());
    }
}
