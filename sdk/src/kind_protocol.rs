//! The kind process protocol (`docs/kind-protocol.md`): its version, the
//! SDK compatibility rule checked in the handshake, the requests the daemon
//! sends a kind process, and the messages a kind process sends, decoded
//! field by field (unknown fields are ignored and named, so that the
//! daemon can log them; anything else wrong is a [`WireError`]).

use crate::protocol::{Action, ErrorCode, ErrorInfo, State};
use serde_json::{Map, Value};
use std::path::Path;

/// The version of the kind process protocol (`protocol` in `hello`).
pub const PROTOCOL_VERSION: u64 = 1;

/// The version of this SDK, sent as `sdk` in the handshake.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest line either side accepts, in bytes (without its newline).
pub const MAX_LINE: usize = 1 << 20;

/// `major.minor.patch` of a semantic version (a pre-release or build
/// suffix is ignored); `None` if `text` is not one.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let mut number = || -> Option<u64> {
        let part = parts.next()?;
        if part.is_empty()
            || !part.bytes().all(|b| b.is_ascii_digit())
            || (part.len() > 1 && part.starts_with('0'))
        {
            return None;
        }
        part.parse().ok()
    };
    let version = (number()?, number()?, number()?);
    parts.next().is_none().then_some(version)
}

/// The SDK compatibility rule: a kind built against SDK `x.y.z` works with
/// a daemon whose SDK is `x'.y'.z'` when `x == x'` and `y <= y'` (`x >= 1`),
/// or `y == y'` (`x == 0`). A version that does not parse is incompatible.
pub fn sdk_compatible(kind_sdk: &str, daemon_sdk: &str) -> bool {
    let (Some((kind_major, kind_minor, _)), Some((daemon_major, daemon_minor, _))) =
        (parse_version(kind_sdk), parse_version(daemon_sdk))
    else {
        return false;
    };
    if kind_major != daemon_major {
        return false;
    }
    if kind_major == 0 {
        kind_minor == daemon_minor
    } else {
        kind_minor <= daemon_minor
    }
}

/// The error code with this number, if it is one.
pub fn error_code(number: u64) -> Option<ErrorCode> {
    Some(match number {
        1 => ErrorCode::Failed,
        2 => ErrorCode::MalformedMessage,
        3 => ErrorCode::UnknownAction,
        4 => ErrorCode::InvalidTransition,
        5 => ErrorCode::InvalidParameters,
        6 => ErrorCode::Unsupported,
        7 => ErrorCode::DuplicateUuid,
        8 => ErrorCode::UnknownComponent,
        9 => ErrorCode::Crashed,
        10 => ErrorCode::TooLarge,
        11 => ErrorCode::RestartBudgetSpent,
        _ => return None,
    })
}

/// An error object as the protocol writes it, read back: `message` (or
/// `msg`), `code` (an unknown or absent code reads as `failed`), the rest
/// as details.
pub fn error_from_json(object: &Map<String, Value>) -> ErrorInfo {
    let message = object
        .get("message")
        .or_else(|| object.get("msg"))
        .and_then(Value::as_str)
        .unwrap_or("(no message)");
    let code = object
        .get("code")
        .and_then(Value::as_u64)
        .and_then(error_code)
        .unwrap_or(ErrorCode::Failed);
    let mut error = ErrorInfo::new(code, message);
    for (key, value) in object {
        if !matches!(key.as_str(), "message" | "msg" | "code" | "kind") {
            error.details.insert(key.clone(), value.clone());
        }
    }
    error
}

/// The wire form of an error object: `{"message", "code", ...details}`.
pub fn error_to_json(error: &ErrorInfo) -> Value {
    serde_json::to_value(error).unwrap_or(Value::Null)
}

/// What was wrong with a line (the request's id if it could be read).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// Why it was refused.
    pub message: String,
    /// The id of the request it was, if it could be read (the request is
    /// then answered with code 2).
    pub request_id: Option<u64>,
}

impl WireError {
    fn new(message: impl Into<String>, request_id: Option<u64>) -> Self {
        WireError {
            message: message.into(),
            request_id,
        }
    }
}

/// One of the requests of the daemon, as a line to send.
pub mod request {
    use super::*;

    fn line(value: Value) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// `hello`: the handshake.
    pub fn hello(id: u64, daemon: &str) -> Vec<u8> {
        line(
            serde_json::json!({"op": "hello", "id": id, "protocol": PROTOCOL_VERSION,
            "daemon": daemon, "sdk": SDK_VERSION}),
        )
    }

    /// `build`: make an instance.
    pub fn build(
        id: u64,
        instance: &str,
        category: &str,
        type_name: &str,
        properties: &Map<String, Value>,
        data_dir: Option<&Path>,
    ) -> Vec<u8> {
        line(
            serde_json::json!({"op": "build", "id": id, "instance": instance,
            "category": category, "type": type_name, "properties": properties,
            "data_dir": data_dir.map(|dir| dir.to_string_lossy())}),
        )
    }

    /// `act`: carry out an action in `state`.
    pub fn act(id: u64, instance: &str, state: State, action: &Action) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("action".into(), action.kind.as_str().into());
        body.insert(
            "parameters".into(),
            Value::Object(action.parameters.clone()),
        );
        body.insert("model".into(), action.model.clone().unwrap_or(Value::Null));
        body.insert(
            "results".into(),
            action.results.clone().unwrap_or(Value::Null),
        );
        line(
            serde_json::json!({"op": "act", "id": id, "instance": instance,
            "state": state.as_str(), "action": body}),
        )
    }

    /// `remove`: release an instance.
    pub fn remove(id: u64, instance: &str) -> Vec<u8> {
        line(serde_json::json!({"op": "remove", "id": id, "instance": instance}))
    }

    /// `ping`.
    pub fn ping(id: u64) -> Vec<u8> {
        line(serde_json::json!({"op": "ping", "id": id}))
    }

    /// `stop`.
    pub fn stop(id: u64) -> Vec<u8> {
        line(serde_json::json!({"op": "stop", "id": id}))
    }

    /// The daemon's answer to a request of the kind.
    pub fn reply(id: u64, outcome: Result<(), &ErrorInfo>) -> Vec<u8> {
        match outcome {
            Ok(()) => line(serde_json::json!({"reply": id, "ok": true})),
            Err(error) => {
                line(serde_json::json!({"reply": id, "ok": false, "error": error_to_json(error)}))
            }
        }
    }
}

/// An event of a kind process about one of its instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The instance moved to this state.
    Transition(State),
    /// The instance went to `error` with this error.
    Fail(ErrorInfo),
    /// The instance's status fields are now these.
    Fields(Map<String, Value>),
    /// Publish the status again.
    Publish,
}

/// A message of a kind process, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum KindMessage {
    /// The answer to a request of the daemon: `Ok` with the reply's other
    /// fields, or the error object.
    Reply {
        /// The request's id.
        id: u64,
        /// Its outcome.
        outcome: Result<Map<String, Value>, ErrorInfo>,
    },
    /// An event about an instance.
    Event {
        /// The instance (its uuid).
        instance: String,
        /// What happened.
        event: Event,
    },
    /// A request of the kind (a manager's `create` or `delete`).
    Request {
        /// Its id, for the reply.
        id: u64,
        /// `create`, `delete`, ...
        name: String,
        /// The whole message.
        body: Map<String, Value>,
    },
}

/// A decoded message and the unknown fields it carried (ignored; the
/// daemon logs them).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The message.
    pub message: KindMessage,
    /// Fields this side does not know.
    pub unknown: Vec<String>,
}

fn is_id(value: &Value) -> Option<u64> {
    value.as_u64()
}

fn unknown(body: &Map<String, Value>, known: &[&str]) -> Vec<String> {
    body.keys()
        .filter(|key| !known.contains(&key.as_str()))
        .cloned()
        .collect()
}

/// Decodes one line of a kind process.
pub fn decode(line: &[u8]) -> Result<Decoded, WireError> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|error| WireError::new(format!("not JSON: {error}"), None))?;
    let Value::Object(body) = value else {
        return Err(WireError::new(
            format!(
                "not a JSON object but {}",
                crate::protocol::action::json_type_name(&value)
            ),
            None,
        ));
    };
    let text = |key: &str, what: &str| -> Result<String, WireError> {
        match body.get(key) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(WireError::new(
                format!("{what}: field {key:?} must be a string"),
                None,
            )),
            None => Err(WireError::new(
                format!("{what}: field {key:?} is missing"),
                None,
            )),
        }
    };
    if let Some(id) = body.get("reply") {
        let id = is_id(id)
            .ok_or_else(|| WireError::new("reply: field \"reply\" must be an id", None))?;
        let ok = body
            .get("ok")
            .and_then(Value::as_bool)
            .ok_or_else(|| WireError::new("reply: field \"ok\" must be a boolean", None))?;
        let outcome = if ok {
            let mut rest = body.clone();
            rest.remove("reply");
            rest.remove("ok");
            Ok(rest)
        } else {
            match body.get("error") {
                Some(Value::Object(error)) => Err(error_from_json(error)),
                _ => {
                    return Err(WireError::new(
                        "reply: field \"error\" must be an object when ok is false",
                        None,
                    ))
                }
            }
        };
        // A successful reply's fields depend on the request (hello's); the
        // caller checks those.
        let unknown = if ok {
            Vec::new()
        } else {
            unknown(&body, &["reply", "ok", "error"])
        };
        return Ok(Decoded {
            message: KindMessage::Reply { id, outcome },
            unknown,
        });
    }
    if let Some(name) = body.get("event") {
        let Value::String(name) = name else {
            return Err(WireError::new(
                "event: field \"event\" must be a string",
                None,
            ));
        };
        let what = format!("event {name}");
        let instance = text("instance", &what)?;
        let (event, known): (Event, &[&str]) = match name.as_str() {
            "transition" => {
                let state = text("state", &what)?;
                let state = state.parse::<State>().map_err(|_| {
                    WireError::new(format!("{what}: unknown state {state:?}"), None)
                })?;
                (Event::Transition(state), &["event", "instance", "state"])
            }
            "fail" => match body.get("error") {
                Some(Value::Object(error)) => (
                    Event::Fail(error_from_json(error)),
                    &["event", "instance", "error"],
                ),
                _ => {
                    return Err(WireError::new(
                        format!("{what}: field \"error\" must be an object"),
                        None,
                    ))
                }
            },
            "fields" => match body.get("fields") {
                Some(Value::Object(fields)) => (
                    Event::Fields(fields.clone()),
                    &["event", "instance", "fields"],
                ),
                _ => {
                    return Err(WireError::new(
                        format!("{what}: field \"fields\" must be an object"),
                        None,
                    ))
                }
            },
            "publish" => (Event::Publish, &["event", "instance"]),
            other => return Err(WireError::new(format!("unknown event {other:?}"), None)),
        };
        return Ok(Decoded {
            unknown: unknown(&body, known),
            message: KindMessage::Event { instance, event },
        });
    }
    if let Some(name) = body.get("request") {
        let id = body.get("id").and_then(is_id);
        let Value::String(name) = name else {
            return Err(WireError::new(
                "request: field \"request\" must be a string",
                id,
            ));
        };
        let id = id.ok_or_else(|| {
            WireError::new(format!("request {name}: field \"id\" must be an id"), None)
        })?;
        return Ok(Decoded {
            message: KindMessage::Request {
                id,
                name: name.clone(),
                body: body.clone(),
            },
            unknown: Vec::new(),
        });
    }
    Err(WireError::new(
        "neither a reply, an event nor a request",
        body.get("id").and_then(is_id),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_rule() {
        assert!(sdk_compatible("0.1.0", "0.1.7"));
        assert!(!sdk_compatible("0.1.0", "0.2.0"));
        assert!(sdk_compatible("1.2.0", "1.3.0"));
        assert!(!sdk_compatible("1.3.0", "1.2.0"));
        assert!(!sdk_compatible("2.0.0", "1.9.0"));
        assert!(!sdk_compatible("x", "0.1.0"));
        assert!(sdk_compatible("0.1.0-rc.1", "0.1.0"));
        assert!(!sdk_compatible("01.0.0", "1.0.0"));
    }

    #[test]
    fn decodes_events_and_names_unknown_fields() {
        let decoded =
            decode(br#"{"event":"transition","instance":"u","state":"running","x":1}"#).unwrap();
        assert_eq!(
            decoded.message,
            KindMessage::Event {
                instance: "u".into(),
                event: Event::Transition(State::Running)
            }
        );
        assert_eq!(decoded.unknown, vec!["x".to_owned()]);
    }

    #[test]
    fn decodes_a_refusal() {
        let decoded =
            decode(br#"{"reply":3,"ok":false,"error":{"message":"no","code":5,"p":"r"}}"#).unwrap();
        let KindMessage::Reply {
            id: 3,
            outcome: Err(error),
        } = decoded.message
        else {
            panic!("not a refusal")
        };
        assert_eq!(error.code, ErrorCode::InvalidParameters);
        assert_eq!(error.details["p"], "r");
    }

    #[test]
    fn refuses_what_is_wrong() {
        for line in [
            &b"junk"[..],
            b"[1]",
            br#"{"event":"transition","instance":"u","state":"dancing"}"#,
            br#"{"event":"fail","instance":"u"}"#,
            br#"{"event":"explode","instance":"u"}"#,
            br#"{"reply":"x","ok":true}"#,
            br#"{"id":4}"#,
        ] {
            assert!(decode(line).is_err(), "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(decode(br#"{"id":4}"#).unwrap_err().request_id, Some(4));
    }
}
