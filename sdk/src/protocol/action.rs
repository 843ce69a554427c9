//! Action messages: parsing a body into a typed [`Action`], with an error
//! that says exactly what was wrong with it.

use super::error::{ErrorCode, ErrorInfo};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// The actions of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Answer with a status at once (also discovery).
    Ping,
    /// Start a simulation.
    Start,
    /// Stop it.
    Stop,
    /// Pause it.
    Pause,
    /// Resume it.
    Resume,
    /// Back to `idle` from anywhere: the recovery path.
    Reset,
    /// Shut the component down.
    Shutdown,
    /// Create a component (managers only).
    Create,
    /// Delete a component (managers only).
    Delete,
}

impl ActionKind {
    /// Every action.
    pub const ALL: [ActionKind; 9] = [
        ActionKind::Ping,
        ActionKind::Start,
        ActionKind::Stop,
        ActionKind::Pause,
        ActionKind::Resume,
        ActionKind::Reset,
        ActionKind::Shutdown,
        ActionKind::Create,
        ActionKind::Delete,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::Ping => "ping",
            ActionKind::Start => "start",
            ActionKind::Stop => "stop",
            ActionKind::Pause => "pause",
            ActionKind::Resume => "resume",
            ActionKind::Reset => "reset",
            ActionKind::Shutdown => "shutdown",
            ActionKind::Create => "create",
            ActionKind::Delete => "delete",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        ActionKind::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(())
    }
}

/// A well-formed action message.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// What to do.
    pub kind: ActionKind,
    /// When to do it (unix seconds); `None` means now.
    pub when: Option<f64>,
    /// The action's parameters (an empty object when absent or null).
    pub parameters: Map<String, Value>,
    /// `start` only: where to download the model from.
    pub model: Option<Value>,
    /// `start` only: where to upload results to.
    pub results: Option<Value>,
}

impl Action {
    /// An action with no parameters, to be done now.
    pub fn new(kind: ActionKind) -> Self {
        Action {
            kind,
            when: None,
            parameters: Map::new(),
            model: None,
            results: None,
        }
    }

    /// The same action with these parameters.
    #[must_use]
    pub fn with_parameters(mut self, parameters: Map<String, Value>) -> Self {
        self.parameters = parameters;
        self
    }

    /// Serialises the action as a message body.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("action".into(), self.kind.as_str().into());
        if let Some(when) = self.when {
            body.insert("when".into(), when.into());
        }
        body.insert("parameters".into(), Value::Object(self.parameters.clone()));
        if let Some(model) = &self.model {
            body.insert("model".into(), model.clone());
        }
        if let Some(results) = &self.results {
            body.insert("results".into(), results.clone());
        }
        Value::Object(body)
    }
}

/// What was wrong with a body that should have been an action.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// Not valid JSON (including invalid UTF-8).
    #[error("message is not valid JSON: {detail} at line {line}, column {column}")]
    NotJson {
        /// The parser's description.
        detail: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// JSON, but not an object.
    #[error("message is not a JSON object but {found}")]
    NotObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("field {field:?} must be {expected}, not {found}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// The type wanted.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// `action` names no action of the protocol.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// The body is larger than the daemon accepts; it was not parsed.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl ActionError {
    /// The error object to publish for this refusal.
    pub fn to_error_info(&self) -> ErrorInfo {
        let code = match self {
            ActionError::UnknownAction(_) => ErrorCode::UnknownAction,
            ActionError::TooLarge { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::MalformedMessage,
        };
        let info = ErrorInfo::new(code, self.to_string());
        match self {
            ActionError::UnknownAction(name) => info.with("action", name.as_str()),
            ActionError::WrongType { field, .. } => info.with("field", *field),
            ActionError::NotJson { line, column, .. } => {
                info.with("line", *line).with("column", *column)
            }
            ActionError::TooLarge { size, limit } => info.with("size", *size).with("limit", *limit),
            ActionError::NotObject { .. } => info,
        }
    }
}

/// The name of a JSON value's type, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a message body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An action to carry out.
    Action(Action),
    /// A JSON object without `action`: status traffic, to be ignored.
    NotAnAction,
    /// Something that should have been an action but is not well-formed.
    Invalid(ActionError),
}

/// Parses a message body. Never panics, whatever the bytes.
pub fn parse_body(body: &[u8]) -> Body {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => {
            return Body::Invalid(ActionError::NotJson {
                detail: error
                    .to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                line: error.line(),
                column: error.column(),
            })
        }
    };
    let Value::Object(mut object) = value else {
        return Body::Invalid(ActionError::NotObject {
            found: json_type_name(&value),
        });
    };
    let Some(action) = object.remove("action") else {
        return Body::NotAnAction;
    };
    match parse_fields(action, object) {
        Ok(action) => Body::Action(action),
        Err(error) => Body::Invalid(error),
    }
}

fn parse_fields(action: Value, mut object: Map<String, Value>) -> Result<Action, ActionError> {
    let Value::String(name) = action else {
        return Err(wrong_type("action", "a string", &action));
    };
    let kind = name
        .parse::<ActionKind>()
        .map_err(|()| ActionError::UnknownAction(echo(&name)))?;
    let when = match object.remove("when") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().filter(|w| w.is_finite()),
        Some(other) => return Err(wrong_type("when", "a number", &other)),
    };
    let parameters = match object.remove("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong_type("parameters", "an object", &other)),
    };
    let model = optional_object(&mut object, "model")?;
    let results = optional_object(&mut object, "results")?;
    Ok(Action {
        kind,
        when,
        parameters,
        model,
        results,
    })
}

/// The longest piece of a client's text echoed in an error (and its log
/// line), in characters.
pub const ECHO_LIMIT: usize = 64;

/// `text`, cut to [`ECHO_LIMIT`] characters (marked with `…` when cut):
/// an error must not echo megabytes of a client's input into every log
/// line and status message.
pub fn echo(text: &str) -> String {
    cut(text, ECHO_LIMIT)
}

/// `text`, cut to `limit` characters (marked with `…` when cut).
pub fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn optional_object(
    object: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<Value>, ActionError> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => Ok(Some(value)),
        Some(other) => Err(wrong_type(field, "an object", &other)),
    }
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> ActionError {
    ActionError::WrongType {
        field,
        expected,
        found: json_type_name(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Body {
        parse_body(text.as_bytes())
    }

    #[test]
    fn full_start_action() {
        let Body::Action(action) = parse(
            r#"{"action":"start","when":1700000000.5,"parameters":{"runtime":3},
                "model":{"type":"url","url":"http://x"},"results":{"url":"http://y"}}"#,
        ) else {
            panic!("not an action")
        };
        assert_eq!(action.kind, ActionKind::Start);
        assert_eq!(action.when, Some(1_700_000_000.5));
        assert_eq!(action.parameters["runtime"], 3);
        assert!(action.model.is_some() && action.results.is_some());
    }

    #[test]
    fn minimal_and_null_fields() {
        let Body::Action(action) = parse(r#"{"action":"ping","when":null,"parameters":null}"#)
        else {
            panic!("not an action")
        };
        assert_eq!(action, Action::new(ActionKind::Ping));
    }

    #[test]
    fn integer_when_as_villasweb_sends_it() {
        let Body::Action(action) = parse(r#"{"action":"stop","when":1700000000}"#) else {
            panic!("not an action")
        };
        assert_eq!(action.when, Some(1_700_000_000.0));
    }

    #[test]
    fn status_traffic_is_not_an_action() {
        assert_eq!(parse(r#"{"status":{"state":"idle"}}"#), Body::NotAnAction);
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(matches!(
            parse("not json"),
            Body::Invalid(ActionError::NotJson { line: 1, .. })
        ));
        assert!(matches!(
            parse_body(&[0x7b, 0xff, 0xfe, 0x7d]),
            Body::Invalid(ActionError::NotJson { .. })
        ));
        assert_eq!(parse_body(&[0xff, 0x00]), parse_body(&[0xff, 0x00]));
        assert!(matches!(
            parse("[1,2]"),
            Body::Invalid(ActionError::NotObject { found: "an array" })
        ));
        assert!(matches!(
            parse("\"ping\""),
            Body::Invalid(ActionError::NotObject { found: "a string" })
        ));
        assert!(matches!(
            parse(r#"{"action":5}"#),
            Body::Invalid(ActionError::WrongType {
                field: "action",
                ..
            })
        ));
        assert!(matches!(
            parse(r#"{"action":"start","when":"soon"}"#),
            Body::Invalid(ActionError::WrongType { field: "when", .. })
        ));
        assert!(matches!(
            parse(r#"{"action":"start","parameters":[1]}"#),
            Body::Invalid(ActionError::WrongType {
                field: "parameters",
                ..
            })
        ));
        assert!(matches!(
            parse(r#"{"action":"start","model":"x"}"#),
            Body::Invalid(ActionError::WrongType { field: "model", .. })
        ));
        assert_eq!(
            parse(r#"{"action":"explode"}"#),
            Body::Invalid(ActionError::UnknownAction("explode".into()))
        );
    }

    #[test]
    fn unknown_action_names_are_echoed_cut() {
        let long = "é".repeat(10_000);
        let Body::Invalid(ActionError::UnknownAction(name)) =
            parse_body(serde_json::json!({ "action": long }).to_string().as_bytes())
        else {
            panic!("not refused")
        };
        assert_eq!(name.chars().count(), ECHO_LIMIT + 1);
        assert!(name.ends_with('…'));
        assert_eq!(echo("explode"), "explode");
    }

    #[test]
    fn errors_map_to_codes() {
        let Body::Invalid(e) = parse(r#"{"action":"explode"}"#) else {
            panic!()
        };
        assert_eq!(e.to_error_info().code, ErrorCode::UnknownAction);
        let Body::Invalid(e) = parse("{") else {
            panic!()
        };
        let info = e.to_error_info();
        assert_eq!(info.code, ErrorCode::MalformedMessage);
        assert!(info.details.contains_key("line"));
    }

    #[test]
    fn to_json_round_trips() {
        let mut action = Action::new(ActionKind::Start);
        action.when = Some(5.0);
        action.parameters.insert("runtime".into(), 2.into());
        let text = serde_json::to_vec(&action.to_json()).unwrap();
        assert_eq!(parse_body(&text), Body::Action(action));
    }
}
