//! A kind executable from any [`Kind`] (cargo feature `serve`): [`serve`]
//! speaks the kind side of the kind process protocol
//! (`docs/kind-protocol.md`) on stdin and stdout, running every instance
//! under a [`Driver`] as the daemon would in-process, and reporting its
//! transitions, failures and status fields as events. The kind itself is
//! unchanged:
//!
//! ```no_run
//! # use villas_sdk::TypedKind;
//! # fn kind() -> std::sync::Arc<dyn villas_sdk::Kind> { unimplemented!() }
//! fn main() {
//!     std::process::exit(villas_sdk::serve::serve(vec![kind()], "my-kinds", "0.1.0"));
//! }
//! ```
//!
//! stdout carries the protocol alone: log to stderr (the daemon logs each
//! line). Managers (`create`/`delete`) are not served yet.

use crate::component::{Effect, Kind};
use crate::kind_protocol::{error_to_json, sdk_compatible, PROTOCOL_VERSION, SDK_VERSION};
use crate::protocol::{Action, ActionKind, ErrorCode, ErrorInfo, HostInfo, State};
use crate::schema::Schemas;
use crate::spec::ComponentSpec;
use crate::time::TimerId;
use crate::Driver;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Keys of `status` that the daemon fills itself (the rest are the kind's
/// fields).
const STATUS_KEYS: [&str; 8] = [
    "state",
    "version",
    "uptime",
    "host",
    "kernel",
    "managed_by",
    "error",
    "components",
];

/// Serves `kinds` on stdin and stdout until `stop` or the end of stdin;
/// the exit status (0, or 1 after a refused handshake or an I/O error).
pub fn serve(kinds: Vec<Arc<dyn Kind>>, name: &str, version: &str) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the kind process runtime: {error}");
            return 1;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(kinds, name.to_owned(), version.to_owned()))
}

/// One served kind: the kind, its compiled schemas, what the handshake says.
struct Served {
    kind: Arc<dyn Kind>,
    schemas: Arc<Schemas>,
    description: Value,
}

/// One instance and what runs for it.
struct Instance {
    driver: Driver,
    /// The state last reported to the daemon (or sent by it).
    reported: State,
    /// The status fields last sent (encoded).
    fields_sent: Option<String>,
    /// Pending timers.
    timers: HashMap<TimerId, tokio::task::AbortHandle>,
}

/// The process's state, shared by the request loop and the timers and
/// tasks it spawns (all on one thread).
struct Server {
    kinds: HashMap<(String, String), Served>,
    instances: HashMap<String, Instance>,
    host: Arc<HostInfo>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    greeted: bool,
}

type Shared = Rc<RefCell<Server>>;

fn line(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn describe(kind: &dyn Kind) -> Value {
    // The actions are an instance's: ask one built from the bare minimum;
    // a kind that needs more properties lists every control action (the
    // instance then refuses what it does not do).
    let probe = ComponentSpec::from_properties(
        json!({"category": kind.category(), "type": kind.type_name()})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let actions: Vec<&str> = match probe
        .ok()
        .and_then(|spec| Driver::check_actions(kind, &spec))
    {
        Some(actions) => actions.iter().map(|a| a.as_str()).collect(),
        None => vec!["start", "stop", "pause", "resume", "shutdown"],
    };
    json!({"category": kind.category(), "type": kind.type_name(),
           "schemas": kind.schemas(), "actions": actions})
}

async fn run(kinds: Vec<Arc<dyn Kind>>, name: String, version: String) -> i32 {
    let mut served = HashMap::new();
    for kind in kinds {
        let schemas = match Schemas::compile(kind.schemas()) {
            Ok(schemas) => Arc::new(schemas),
            Err(error) => {
                eprintln!(
                    "{}/{}: invalid schema: {error}",
                    kind.category(),
                    kind.type_name()
                );
                return 1;
            }
        };
        let description = describe(kind.as_ref());
        served.insert(
            (kind.category().to_owned(), kind.type_name().to_owned()),
            Served {
                kind,
                schemas,
                description,
            },
        );
    }
    let (out, mut lines_out) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::task::spawn_local(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(bytes) = lines_out.recv().await {
            if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let server: Shared = Rc::new(RefCell::new(Server {
        kinds: served,
        instances: HashMap::new(),
        host: Arc::new(HostInfo::detect(version.clone())),
        out,
        greeted: false,
    }));
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut status = 0;
    while let Ok(Some(text)) = stdin.next_line().await {
        match handle(&server, text.as_bytes(), &name, &version) {
            Flow::Go => {}
            Flow::Exit(code) => {
                status = code;
                break;
            }
        }
    }
    {
        let mut server = server.borrow_mut();
        for instance in server.instances.values_mut() {
            instance.driver.release();
        }
        server.instances.clear();
    }
    drop(server);
    let _ = writer.await;
    status
}

enum Flow {
    Go,
    Exit(i32),
}

fn reply(server: &Server, id: u64, outcome: Result<Map<String, Value>, ErrorInfo>) {
    let body = match outcome {
        Ok(mut fields) => {
            fields.insert("reply".into(), id.into());
            fields.insert("ok".into(), true.into());
            Value::Object(fields)
        }
        Err(error) => json!({"reply": id, "ok": false, "error": error_to_json(&error)}),
    };
    let _ = server.out.send(line(&body));
}

fn malformed(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::MalformedMessage, message)
}

fn handle(shared: &Shared, text: &[u8], name: &str, version: &str) -> Flow {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(text) else {
        eprintln!("protocol error from the daemon: not a JSON object");
        return Flow::Go;
    };
    if body.contains_key("reply") {
        eprintln!("protocol error from the daemon: a reply to no request");
        return Flow::Go;
    }
    let Some(id) = body.get("id").and_then(Value::as_u64) else {
        eprintln!("protocol error from the daemon: no id");
        return Flow::Go;
    };
    let op = body.get("op").and_then(Value::as_str).unwrap_or("");
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut server = shared.borrow_mut();
    match op {
        "hello" => {
            let protocol = body.get("protocol").and_then(Value::as_u64);
            let daemon_sdk = text("sdk").unwrap_or_default();
            if protocol != Some(PROTOCOL_VERSION) || !sdk_compatible(SDK_VERSION, &daemon_sdk) {
                let why = format!(
                    "this kind speaks protocol {PROTOCOL_VERSION} with SDK {SDK_VERSION}; the daemon protocol {protocol:?} with SDK {daemon_sdk}"
                );
                eprintln!("handshake refused: {why}");
                reply(
                    &server,
                    id,
                    Err(ErrorInfo::new(ErrorCode::Unsupported, why)),
                );
                return Flow::Exit(1);
            }
            server.greeted = true;
            let kinds: Vec<Value> = server
                .kinds
                .values()
                .map(|s| s.description.clone())
                .collect();
            let fields = json!({"protocol": PROTOCOL_VERSION, "name": name, "version": version,
                                "sdk": SDK_VERSION, "kinds": kinds});
            reply(
                &server,
                id,
                Ok(fields.as_object().cloned().unwrap_or_default()),
            );
        }
        "stop" => {
            reply(&server, id, Ok(Map::new()));
            return Flow::Exit(0);
        }
        _ if !server.greeted => {
            reply(
                &server,
                id,
                Err(malformed("the handshake (hello) comes first")),
            );
        }
        "ping" => reply(&server, id, Ok(Map::new())),
        "build" => {
            let outcome = build(&mut server, &body);
            let instance = text("instance").unwrap_or_default();
            let ok = outcome.is_ok();
            reply(&server, id, outcome.map(|()| Map::new()));
            if ok {
                // What the daemon's actor does once it started an
                // in-process instance: its on_start hook (no manager here).
                let mut effects = Vec::new();
                if let Some(entry) = server.instances.get_mut(&instance) {
                    entry.driver.start(None, &mut effects);
                }
                drop(server);
                // Sends its first fields, and what on_start produced.
                apply(shared, &instance, effects);
            }
        }
        "act" => {
            drop(server);
            let outcome = act(shared, &body);
            reply(&shared.borrow(), id, outcome.map(|()| Map::new()));
        }
        "remove" => {
            let instance = text("instance").unwrap_or_default();
            match server.instances.remove(&instance) {
                Some(mut removed) => {
                    for timer in removed.timers.values() {
                        timer.abort();
                    }
                    removed.driver.remove(&mut Vec::new());
                    reply(&server, id, Ok(Map::new()));
                }
                None => reply(
                    &server,
                    id,
                    Err(ErrorInfo::new(
                        ErrorCode::UnknownComponent,
                        format!("no instance {instance}"),
                    )),
                ),
            }
        }
        other => reply(&server, id, Err(malformed(format!("unknown op {other:?}")))),
    }
    Flow::Go
}

fn build(server: &mut Server, body: &Map<String, Value>) -> Result<(), ErrorInfo> {
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(format!("build: field {key:?} must be a string")))
    };
    let (instance, category, type_name) = (text("instance")?, text("category")?, text("type")?);
    if server.instances.contains_key(instance) {
        return Err(ErrorInfo::new(
            ErrorCode::DuplicateUuid,
            format!("instance {instance} exists already"),
        ));
    }
    let served = server
        .kinds
        .get(&(category.to_owned(), type_name.to_owned()))
        .ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::Unsupported,
                format!("this process serves no {category}/{type_name}"),
            )
        })?;
    let mut properties = match body.get("properties") {
        Some(Value::Object(properties)) => properties.clone(),
        _ => return Err(malformed("build: field \"properties\" must be an object")),
    };
    properties.insert("uuid".into(), instance.into());
    properties.insert("category".into(), category.into());
    properties.insert("type".into(), type_name.into());
    let mut spec = ComponentSpec::from_properties(properties).map_err(|e| e.to_error_info())?;
    spec.set_data_dir(
        body.get("data_dir")
            .and_then(Value::as_str)
            .map(PathBuf::from),
    );
    let driver = Driver::new(
        served.kind.clone(),
        served.schemas.clone(),
        spec,
        server.host.clone(),
        None,
    )?;
    server.instances.insert(
        instance.to_owned(),
        Instance {
            driver,
            reported: State::Idle,
            fields_sent: None,
            timers: HashMap::new(),
        },
    );
    Ok(())
}

fn act(shared: &Shared, body: &Map<String, Value>) -> Result<(), ErrorInfo> {
    let instance = body
        .get("instance")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("act: field \"instance\" must be a string"))?
        .to_owned();
    let Some(Value::Object(action)) = body.get("action") else {
        return Err(malformed("act: field \"action\" must be an object"));
    };
    let kind_name = action.get("action").and_then(Value::as_str).unwrap_or("");
    let kind: ActionKind = kind_name.parse().map_err(|()| {
        ErrorInfo::new(
            ErrorCode::UnknownAction,
            format!("unknown action {kind_name:?}"),
        )
    })?;
    let mut parsed = Action::new(kind);
    if let Some(Value::Object(parameters)) = action.get("parameters") {
        parsed.parameters = parameters.clone();
    }
    parsed.model = action.get("model").cloned().filter(|v| !v.is_null());
    parsed.results = action.get("results").cloned().filter(|v| !v.is_null());
    let mut effects = Vec::new();
    let outcome = {
        let mut server = shared.borrow_mut();
        let entry = server.instances.get_mut(&instance).ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::UnknownComponent,
                format!("no instance {instance}"),
            )
        })?;
        // The daemon moved the component to the action's transient state
        // and published it already.
        let sent: Option<State> = body
            .get("state")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        if let Some(state) = sent {
            entry.reported = state;
        }
        let outcome = entry.driver.handle(&parsed, None, &mut effects);
        if let (Some(Effect::Publish { state, error: None }), Some(sent)) = (effects.first(), sent)
        {
            if *state == sent {
                effects.remove(0);
            }
        }
        outcome
    };
    apply(shared, &instance, effects);
    outcome
}

/// Sends what a call into the instance produced, and runs its timers and
/// tasks.
fn apply(shared: &Shared, uuid: &str, effects: Vec<Effect>) {
    let mut publishes = Vec::new();
    for effect in effects {
        match effect {
            Effect::Publish { state, error } => publishes.push((state, error)),
            Effect::Schedule { after, timer } => {
                let weak = Rc::downgrade(shared);
                let owner = uuid.to_owned();
                let handle = tokio::task::spawn_local(async move {
                    tokio::time::sleep(after).await;
                    let Some(shared) = weak.upgrade() else { return };
                    let mut effects = Vec::new();
                    {
                        let mut server = shared.borrow_mut();
                        let Some(entry) = server.instances.get_mut(&owner) else {
                            return;
                        };
                        entry.timers.remove(&timer);
                        entry.driver.timer_fired(timer, None, &mut effects);
                    }
                    apply(&shared, &owner, effects);
                });
                if let Some(entry) = shared.borrow_mut().instances.get_mut(uuid) {
                    entry.timers.insert(timer, handle.abort_handle());
                }
            }
            Effect::Cancel { timer } => {
                if let Some(entry) = shared.borrow_mut().instances.get_mut(uuid) {
                    if let Some(handle) = entry.timers.remove(&timer) {
                        handle.abort();
                    }
                }
            }
            Effect::Spawn { task, generation } => {
                let weak = Rc::downgrade(shared);
                let owner = uuid.to_owned();
                tokio::task::spawn_local(async move {
                    let output = task.0.await;
                    let Some(shared) = weak.upgrade() else { return };
                    let mut effects = Vec::new();
                    {
                        let mut server = shared.borrow_mut();
                        let Some(entry) = server.instances.get_mut(&owner) else {
                            return;
                        };
                        entry
                            .driver
                            .task_done(generation, output, None, &mut effects);
                    }
                    apply(&shared, &owner, effects);
                });
            }
        }
    }
    let mut server = shared.borrow_mut();
    if publishes.is_empty() {
        sync_fields(&mut server, uuid);
        return;
    }
    for (state, error) in publishes {
        sync_fields(&mut server, uuid);
        let Some(entry) = server.instances.get_mut(uuid) else {
            return;
        };
        let event = match error {
            Some(error) if state == State::Error => {
                json!({"event": "fail", "instance": uuid, "error": error_to_json(&error)})
            }
            _ if state != entry.reported => {
                json!({"event": "transition", "instance": uuid, "state": state.as_str()})
            }
            _ => json!({"event": "publish", "instance": uuid}),
        };
        entry.reported = state;
        let _ = server.out.send(line(&event));
    }
}

/// Sends the instance's status fields if they changed.
fn sync_fields(server: &mut Server, uuid: &str) {
    let Some(entry) = server.instances.get_mut(uuid) else {
        return;
    };
    let status = entry
        .driver
        .status_json(entry.driver.state(), None, Default::default());
    let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(&status) else {
        return;
    };
    let Some(Value::Object(mut fields)) = message.remove("status") else {
        return;
    };
    for key in STATUS_KEYS {
        fields.remove(key);
    }
    let encoded = Value::Object(fields.clone()).to_string();
    if entry.fields_sent.as_deref() != Some(encoded.as_str()) {
        entry.fields_sent = Some(encoded);
        let event = json!({"event": "fields", "instance": uuid, "fields": fields});
        let _ = server.out.send(line(&event));
    }
}
