//! In-process hot paths of the daemon, without a broker:
//!
//! - `route/*`: the fan-out of one message through
//!   `villas_actors::routing::RoutingTable` with 10,000 components
//!   (half `simulator/dummy`, half `simulator/generic`, all in one realm),
//!   addressed by uuid (one IC), by type (half), by category and by realm
//!   (all), by `uuid: ""` (everyone), and by realm + type together (the
//!   once-per-component de-duplication path). The payload is a `u32` and
//!   the closure only counts deliveries, so this is the index alone.
//! - `parse_body/*`: `villas_sdk::protocol::parse_body` on a typical `ping`
//!   and `start` body (what the consumer does once per message).
//! - `intake/*`: `villas_actors::ports::Intake::accept`, what every
//!   transport calls per message (size limit, `parse_body`, metrics, the
//!   delivery span, fan-out through `Dispatch`), over the same 10,000
//!   components, the `Dispatch` counting deliveries instead of sending to
//!   mailboxes: a ping and a start to one uuid, a ping to everyone, a
//!   malformed body; and the ping to one uuid again with a `fmt`
//!   subscriber at level info writing to nowhere, so the delivery span is
//!   created and formatted as in the daemon.
//! - `status_json/*`: `Driver::status_json` of a dummy simulator (what every
//!   ping answer costs), and of a generic manager that lists 10,000
//!   managed uuids (at the top level and in `status`), for comparison.
//!
//! Run: `cargo bench --bench fanout` (about a minute).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use villas_actors::ports::{Dispatch, Inbound, Intake, Intook};
use villas_actors::routing::RoutingTable;
use villas_sdk::protocol::{parse_body, Body, HostInfo};
use villas_sdk::{ComponentSpec, Driver, Headers, Identity, Kind, Schemas, State, StatusExtra};

/// Components in the table.
const COMPONENTS: usize = 10_000;
/// The realm every component is in.
const REALM: &str = "bench-realm";

fn uuid_of(n: usize) -> String {
    uuid::Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | n as u128)
        .hyphenated()
        .to_string()
}

fn table() -> RoutingTable<u32> {
    let mut table = RoutingTable::new();
    for n in 0..COMPONENTS {
        let identity = Identity {
            realm: Some(REALM.to_owned()),
            category: "simulator".to_owned(),
            type_name: if n % 2 == 0 { "dummy" } else { "generic" }.to_owned(),
            uuid: uuid_of(n),
        };
        table.insert(identity, n as u32).unwrap();
    }
    table
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    let mut headers = Headers::default();
    for (name, value) in pairs {
        headers.set(name, (*value).to_owned());
    }
    headers
}

fn bench_route(c: &mut Criterion) {
    let table = table();
    let one = uuid_of(4242);
    let cases: Vec<(&str, Headers, usize)> = vec![
        ("uuid_one", headers(&[("uuid", &one)]), 1),
        (
            "uuid_unknown",
            headers(&[("uuid", &uuid_of(COMPONENTS + 1))]),
            0,
        ),
        ("type_half", headers(&[("type", "dummy")]), COMPONENTS / 2),
        (
            "category_all",
            headers(&[("category", "simulator")]),
            COMPONENTS,
        ),
        ("realm_all", headers(&[("realm", REALM)]), COMPONENTS),
        ("uuid_empty_everyone", headers(&[("uuid", "")]), COMPONENTS),
        (
            "realm_and_type_dedup",
            headers(&[("realm", REALM), ("type", "dummy")]),
            COMPONENTS,
        ),
    ];
    let mut group = c.benchmark_group("route");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, headers, expected) in &cases {
        // Check the case addresses what its name says before timing it.
        let mut seen = 0u64;
        let reached = table.route(headers, |route| seen += u64::from(route.target));
        assert_eq!(reached, *expected, "{name}");
        group.throughput(Throughput::Elements((*expected).max(1) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), headers, |b, headers| {
            b.iter(|| {
                let mut delivered = 0u32;
                let reached = table.route(black_box(headers), |route| {
                    black_box(route.target);
                    delivered += 1;
                });
                black_box((reached, delivered))
            });
        });
    }
    group.finish();
}

fn bench_parse_body(c: &mut Criterion) {
    let ping = br#"{"action": "ping", "when": 1700000000.123}"#.to_vec();
    let start = serde_json::to_vec(&json!({
        "action": "start",
        "when": 1700000000.123,
        "parameters": {"runtime": 3.5, "timestep": 0.001, "name": "grid-a"},
        "model": {"url": "https://files.example.invalid/models/grid-a.zip", "token": "abc123"},
        "results": {"url": "https://files.example.invalid/results/42", "type": "url"}
    }))
    .unwrap();
    for body in [&ping, &start] {
        assert!(matches!(parse_body(body), Body::Action(_)));
    }
    let mut group = c.benchmark_group("parse_body");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("ping", |b| b.iter(|| parse_body(black_box(&ping))));
    group.bench_function("start", |b| b.iter(|| parse_body(black_box(&start))));
    group.finish();
}

/// The routing table as the intake's `Dispatch`, counting deliveries
/// where the daemon's Directory sends them to mailboxes.
struct Counting(RoutingTable<u32>);

impl Dispatch for Counting {
    fn dispatch(&self, headers: &Headers, message: &Arc<Inbound>) -> usize {
        self.0.route(headers, |route| {
            black_box((route.target, message));
        })
    }
}

fn bench_intake(c: &mut Criterion) {
    let metrics = villas_metrics::Metrics::new(&villas_metrics::BuildInfo {
        version: "bench".into(),
        profile: "release",
    })
    .unwrap();
    let intake = Intake::new(
        Arc::new(Counting(table())),
        1 << 20,
        metrics.daemon().clone(),
    );
    let one = uuid_of(4242);
    let ping = br#"{"action": "ping", "when": 1700000000.123}"#.to_vec();
    let start = serde_json::to_vec(&json!({
        "action": "start",
        "when": 1700000000.123,
        "parameters": {"runtime": 3.5, "timestep": 0.001, "name": "grid-a"},
        "model": {"url": "https://files.example.invalid/models/grid-a.zip", "token": "abc123"},
        "results": {"url": "https://files.example.invalid/results/42", "type": "url"}
    }))
    .unwrap();
    let cases: Vec<(&str, Headers, &[u8], usize)> = vec![
        ("ping_one", headers(&[("uuid", &one)]), &ping, 1),
        ("start_one", headers(&[("uuid", &one)]), &start, 1),
        ("ping_everyone", headers(&[("uuid", "")]), &ping, COMPONENTS),
        (
            "malformed_one",
            headers(&[("uuid", &one)]),
            b"{\"action\": ",
            1,
        ),
    ];
    let mut group = c.benchmark_group("intake");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, headers, body, expected) in &cases {
        assert_eq!(
            intake.accept(headers, body),
            Intook::Dispatched(*expected),
            "{name}"
        );
        group.throughput(Throughput::Elements((*expected).max(1) as u64));
        group.bench_function(*name, |b| {
            b.iter(|| intake.accept(black_box(headers), black_box(body)))
        });
    }
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let (_, headers, body, _) = &cases[0];
        group.throughput(Throughput::Elements(1));
        group.bench_function("ping_one_logged", |b| {
            b.iter(|| intake.accept(black_box(headers), black_box(body)))
        });
    });
    group.finish();
}

fn kind(category: &str, type_name: &str) -> Arc<dyn Kind> {
    villas_controller::builtin_kinds()
        .into_iter()
        .find(|k| k.category() == category && k.type_name() == type_name)
        .unwrap_or_else(|| panic!("kind {category}/{type_name} not built in"))
}

fn driver(kind: Arc<dyn Kind>, properties: Value, host: &Arc<HostInfo>) -> Driver {
    let Value::Object(properties) = properties else {
        unreachable!("properties are an object")
    };
    let schemas = Arc::new(Schemas::compile(kind.schemas()).unwrap());
    let spec = ComponentSpec::from_properties(properties).unwrap();
    Driver::new(kind, schemas, spec, host.clone(), Some(uuid_of(0))).unwrap()
}

fn bench_status(c: &mut Criterion) {
    let host = Arc::new(HostInfo::detect("0.1.0"));
    let dummy = driver(
        kind("simulator", "dummy"),
        json!({
            "category": "simulator",
            "type": "dummy",
            "name": "Dummy simulator 42",
            "realm": REALM,
            "uuid": uuid_of(42),
            "location": "bench lab",
            "owner": "bench",
            "transition_delay": 0.1,
        }),
        &host,
    );
    let manager = driver(
        kind("manager", "generic"),
        json!({
            "category": "manager",
            "type": "generic",
            "name": "Generic Manager",
            "uuid": uuid_of(0),
        }),
        &host,
    );
    // What a manager actor keeps: its components' uuids (as map keys).
    let managed: Vec<String> = (1..=COMPONENTS).map(uuid_of).collect();
    let manager_status = |manager: &Driver| {
        // The actor borrows the uuids for every status: part of the cost.
        let components: Vec<&str> = managed.iter().map(String::as_str).collect();
        let extra = StatusExtra {
            fields: None,
            components: Some(&components),
        };
        manager.status_json(State::Idle, None, extra)
    };
    let dummy_len = dummy
        .status_json(State::Idle, None, StatusExtra::default())
        .len();
    let manager_len = manager_status(&manager).len();
    println!("status_json sizes: dummy {dummy_len} B, manager with {COMPONENTS} components {manager_len} B");

    let mut group = c.benchmark_group("status_json");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Bytes(dummy_len as u64));
    group.bench_function("dummy_idle", |b| {
        b.iter(|| {
            black_box(&dummy).status_json(black_box(State::Idle), None, StatusExtra::default())
        })
    });
    group.throughput(Throughput::Bytes(manager_len as u64));
    group.bench_function("manager_10k_components", |b| {
        b.iter(|| manager_status(black_box(&manager)))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_route,
    bench_parse_body,
    bench_intake,
    bench_status
);
criterion_main!(benches);
