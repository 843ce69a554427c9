//! The fuzz targets of villas-controller, as plain functions over bytes
//! (each panics on a broken invariant), and a small mutation loop that
//! runs them as stable binaries where cargo-fuzz (nightly) is missing.
//!
//! - [`message`]: an AMQP header table and a body, as the consumer gets
//!   them: `headers_of`, the routing rule, `parse_body`, then
//!   `Driver::handle` on a dummy simulator and on a generic manager under
//!   `villas_sdk::testing::Harness` (the manager's `create`d definitions
//!   must survive the state directory's write-and-read round trip).
//! - [`settings`]: a configuration text in TOML, YAML or JSON through the
//!   settings loader.

#![forbid(unsafe_code)]

use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use serde_json::Map;
use std::sync::{Arc, OnceLock};
use villas_actors::kinds::KindRegistry;
use villas_controller::settings::{self, Format};
use villas_actors::store::{parse_definition, Definition};
use villas_sdk::protocol::{parse_body, Body, StatusView};
use villas_sdk::testing::{Harness, Published};
use villas_sdk::{Action, ComponentSpec, Driver, Headers, Identity};

pub mod mutate;

fn kinds() -> &'static KindRegistry {
    static KINDS: OnceLock<KindRegistry> = OnceLock::new();
    KINDS.get_or_init(|| {
        KindRegistry::new(villas_controller::builtin_kinds()).expect("built-in schemas compile")
    })
}

/// Splits the input into a header table and a body: byte 0 is the length
/// of the header part, which is read as (name, type, value) triples.
fn split(data: &[u8]) -> (FieldTable, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (FieldTable::default(), data);
    };
    let n = usize::from(n % 64).min(rest.len());
    let (head, body) = rest.split_at(n);
    let mut table = FieldTable::default();
    let bytes = head.chunks(3);
    let names = ["uuid", "realm", "category", "type", "x-match", "UUID"];
    let values = [
        "",
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "simulator",
        "manager",
        "dummy",
        "generic",
        "realm",
    ];
    for chunk in bytes {
        let [name, kind, value] = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let name = names[usize::from(name) % names.len()];
        let text = values[usize::from(value) % values.len()];
        let value = match kind % 8 {
            0 | 1 => AMQPValue::LongString(LongString::from(text)),
            2 => AMQPValue::LongInt(i32::from(value)),
            3 => AMQPValue::Boolean(value % 2 == 0),
            4 => AMQPValue::Void,
            5 => AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString(
                LongString::from(text),
            )])),
            6 => AMQPValue::LongString(LongString::from(vec![0xff, value, 0xc3])),
            _ => AMQPValue::Double(f64::from(value)),
        };
        table.insert(name.into(), value);
    }
    (table, body)
}

/// Checks that a definition a generic manager created is stored and read
/// back unchanged by the state directory.
fn check_stored(spec: &ComponentSpec) {
    let definition = Definition {
        managed_by: "00000000-0000-4000-8000-000000000002".into(),
        created: 1.0,
        properties: spec.properties.clone(),
    };
    let text = serde_json::to_vec_pretty(&definition).expect("a definition serialises");
    let (read, restored) = parse_definition(&text, spec.uuid())
        .unwrap_or_else(|e| panic!("a created definition does not read back: {e}"));
    assert_eq!(read, definition);
    assert_eq!(&restored, spec);
}

/// An instance of a built-in kind under the testing harness, with the
/// daemon's shared schemas.
fn harness(category: &str, kind: &str, uuid: &str) -> Harness {
    let registered = kinds().get(category, kind).expect("built-in kind");
    let mut properties = Map::new();
    properties.insert("category".into(), category.into());
    properties.insert("type".into(), kind.into());
    properties.insert("uuid".into(), uuid.into());
    properties.insert("transition_delay".into(), 0.into());
    let spec = ComponentSpec::from_properties(properties).expect("valid definition");
    let driver = Driver::new(
        registered.kind.clone(),
        registered.schemas.clone(),
        spec,
        Arc::new(villas_sdk::protocol::HostInfo::detect("fuzz")),
        Some("00000000-0000-4000-8000-000000000002".into()),
    )
    .expect("builds");
    Harness::from_driver(driver)
}

/// Carries out `action` and the timers it schedules (at most 16, on the
/// virtual clock); every status it publishes must be a valid status
/// message, and every definition a manager creates must survive the
/// state directory.
fn run(h: &mut Harness, action: &Action) {
    let _ = h.handle(action);
    for _ in 0..16 {
        if !h.fire_next() {
            break;
        }
    }
    for Published { state, error } in h.published() {
        if let Some(error) = &error {
            let size = serde_json::to_string(error).map_or(0, |t| t.len());
            assert!(size < 4096, "an error of {size} bytes was published");
        }
        let body = h
            .driver()
            .status_json(state, error.as_ref(), Default::default());
        let view: Result<StatusView, _> = serde_json::from_slice(&body);
        assert!(view.is_ok(), "an invalid status was published");
    }
    if let Some(manager) = h.manager() {
        manager.created.iter().for_each(check_stored);
    }
}

/// The message target: never panics, whatever the bytes.
pub fn message(data: &[u8]) {
    let (table, body) = split(data);
    let headers: Headers = villas_client::wire::headers_of(Some(&table));
    let sim = Identity {
        realm: Some("realm".into()),
        category: "simulator".into(),
        type_name: "dummy".into(),
        uuid: "00000000-0000-4000-8000-000000000001".into(),
    };
    let manager = Identity {
        realm: None,
        category: "manager".into(),
        type_name: "generic".into(),
        uuid: "00000000-0000-4000-8000-000000000002".into(),
    };
    let mut table = villas_actors::routing::RoutingTable::new();
    table.insert(sim.clone(), 1).expect("fresh table");
    table.insert(manager.clone(), 2).expect("fresh table");
    let mut reached = Vec::new();
    table.route(&headers, |route| reached.push(route.target));
    reached.sort_unstable();
    let expected: Vec<i32> = [(&sim, 1), (&manager, 2)]
        .into_iter()
        .filter(|(id, _)| id.matches(&headers))
        .map(|(_, n)| n)
        .collect();
    assert_eq!(reached, expected, "routing disagrees with the x-match rule");

    match parse_body(body) {
        Body::NotAnAction => {}
        Body::Invalid(error) => {
            let info = error.to_error_info();
            assert!(
                info.message.len() < 4096,
                "an error echoes {} bytes",
                info.message.len()
            );
            let mut d = harness("simulator", "dummy", &sim.uuid);
            let mut effects = Vec::new();
            d.driver().refuse(info, &mut effects);
        }
        Body::Action(action) => {
            let again = parse_body(&serde_json::to_vec(&action.to_json()).expect("serialises"));
            assert_eq!(
                again,
                Body::Action(action.clone()),
                "to_json does not round-trip"
            );
            let mut action = action;
            action.when = None;
            run(&mut harness("simulator", "dummy", &sim.uuid), &action);
            run(&mut harness("manager", "generic", &manager.uuid), &action);
        }
    }
}

/// The settings target: never panics, whatever the text.
pub fn settings(data: &[u8]) {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => Format::Toml,
        1 => Format::Yaml,
        _ => Format::Json,
    };
    let text = String::from_utf8_lossy(text);
    if let Ok(checked) = settings::check_text(&text, format, kinds()) {
        // What was accepted is usable: every component has a valid uuid.
        for configured in checked.placement.all() {
            let uuid = configured.spec.uuid();
            assert_eq!(villas_sdk::spec::canonical_uuid(uuid), uuid);
        }
    }
}

/// The outcome class of a message input, for the stable fuzzer's corpus.
pub fn message_signature(data: &[u8]) -> u64 {
    let (table, body) = split(data);
    let headers = villas_client::wire::headers_of(Some(&table));
    let class = match parse_body(body) {
        Body::NotAnAction => "not-an-action".to_owned(),
        Body::Invalid(error) => {
            let info = error.to_error_info();
            let words: String = info
                .message
                .split(|c: char| !c.is_alphabetic())
                .take(6)
                .collect();
            format!("invalid {} {words}", info.code.name())
        }
        Body::Action(action) => {
            let mut keys: Vec<&String> = action.parameters.keys().collect();
            keys.sort();
            keys.truncate(4);
            format!("{} {:?} {keys:?}", action.kind, action.when.is_some())
        }
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(
        &(headers.is_empty(), headers.addresses_everyone(), class),
        &mut h,
    );
    std::hash::Hasher::finish(&h)
}

/// The outcome class of a settings input, for the stable fuzzer's corpus.
pub fn settings_signature(data: &[u8]) -> u64 {
    let Some((&selector, text)) = data.split_first() else {
        return 0;
    };
    let format = match selector % 3 {
        0 => Format::Toml,
        1 => Format::Yaml,
        _ => Format::Json,
    };
    let text = String::from_utf8_lossy(text);
    let class = match settings::check_text(&text, format, kinds()) {
        Ok(s) => format!(
            "ok {} {} {}",
            s.placement.component_count(),
            s.placement.manager_count(),
            s.broker
        ),
        Err(settings::SettingsError::Invalid { key, message, .. }) => {
            let key: String = key
                .chars()
                .filter(|c| c.is_alphabetic() || *c == '.')
                .collect();
            let words: String = message
                .split(|c: char| !c.is_alphabetic())
                .take(4)
                .collect();
            format!("invalid {key} {words}")
        }
        Err(settings::SettingsError::Load { message, .. }) => {
            let words: String = message
                .split(|c: char| !c.is_alphabetic())
                .take(4)
                .collect();
            format!("load {words}")
        }
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(selector % 3, class), &mut h);
    std::hash::Hasher::finish(&h)
}

/// Seeds and dictionary of the message target.
pub mod message_seeds {
    /// Seed inputs (header length byte, header triples, body).
    pub const SEEDS: &[&[u8]] = &[
        b"\x03\x00\x00\x01{\"action\":\"ping\"}",
        b"\x03\x00\x00\x02{\"action\":\"create\",\"parameters\":{\"name\":\"n\",\"category\":\"simulator\",\"type\":\"dummy\",\"properties\":{\"transition_delay\":0}}}",
        b"\x03\x00\x00\x02{\"action\":\"delete\",\"parameters\":{\"uuid\":\"00000000-0000-4000-8000-000000000001\"}}",
        b"\x03\x00\x00\x01{\"action\":\"start\",\"when\":1,\"parameters\":{\"runtime\":1},\"model\":{},\"results\":{}}",
        b"\x06\x01\x00\x07\x02\x02\x03{\"action\":\"pause\"}",
        b"\x03\x00\x00\x00{\"status\":{\"state\":\"idle\"}}",
        b"\x00[1,2,{\"a\":null}]",
        b"\x03\x00\x00\x01{\"action\":\"reset\",\"parameters\":null}",
    ];
    /// Tokens the mutator inserts.
    pub const DICTIONARY: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"null",
        b"true",
        b"1e999",
        b"-0",
        b"\\u0000",
        b"\\ud800",
        b"\"action\":",
        b"\"parameters\":",
        b"\"when\":",
        b"\"model\":",
        b"\"results\":",
        b"\"uuid\":",
        b"\"category\":",
        b"\"type\":",
        b"\"properties\":",
        b"\"ping\"",
        b"\"start\"",
        b"\"stop\"",
        b"\"create\"",
        b"\"delete\"",
        b"\"reset\"",
        b"\"pause\"",
        b"\"resume\"",
        b"\"shutdown\"",
        b"\"manager\"",
        b"\"generic\"",
        b"\"simulator\"",
        b"\"dummy\"",
        b"\"runtime\":",
        b"\"transition_delay\":",
        b"\"00000000-0000-4000-8000-000000000001\"",
        b"\xff",
        b"\xc3",
        b"1.7976931348623157e308",
        b"\"realm\":",
        b"\"name\":",
    ];
}

/// Seeds and dictionary of the settings target.
pub mod settings_seeds {
    /// Seed inputs (format selector byte: 0 TOML, 1 YAML, 2 JSON; text).
    pub const SEEDS: &[&[u8]] = &[
        b"\x00uuid = \"3ddd318e-fee1-46d7-bff4-7c064d640d4e\"\n[broker]\nurl = \"amqp://localhost/%2F\"\nmax_body_bytes = 100\n[api]\nport = 0\n[[components]]\ncategory = \"simulator\"\ntype = \"dummy\"\nuuid = \"00000000-0000-4000-8000-000000000001\"\n",
        b"\x01uuid: 3ddd318e-fee1-46d7-bff4-7c064d640d4e\nstate_dir: /nonexistent/x\nstate:\n  delete_data: true\nstatus:\n  heartbeat_interval: 5\ncomponents:\n  - category: manager\n    type: generic\n    uuid: 00000000-0000-4000-8000-000000000002\n  - category: simulator\n    type: dummy\n    manager: 00000000-0000-4000-8000-000000000002\n",
        b"\x02{\"uuid\": null, \"workdir\": \"/tmp/x\", \"broker\": {\"url\": \"amqps://h\", \"heartbeat\": 0, \"queue_expires\": 1e300}, \"components\": [{\"category\": \"simulator\", \"type\": \"dummy\", \"enabled\": false}]}",
    ];
    /// Tokens the mutator inserts.
    pub const DICTIONARY: &[&[u8]] = &[
        b"\n",
        b"[",
        b"]",
        b"{",
        b"}",
        b"=",
        b":",
        b"- ",
        b"  ",
        b"\"",
        b"'",
        b"[[components]]\n",
        b"[broker]\n",
        b"[api]\n",
        b"[state]\n",
        b"uuid",
        b"url",
        b"components",
        b"category",
        b"type",
        b"manager",
        b"enabled",
        b"null",
        b"true",
        b"-1",
        b"1e999",
        b"nan",
        b"inf",
        b"0x10",
        b"&a",
        b"*a",
        b"!!binary",
        b"<<: ",
        b"state_dir",
        b"workdir",
        b"heartbeat_interval",
        b"max_body_bytes",
        b"transition_delay",
        b"port",
        b"bind",
        b"exchange",
    ];
}
