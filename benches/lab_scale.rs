//! A lab on one broker: D daemons of N `simulator/dummy` ICs each, all in
//! one realm, on a fresh exchange of the local RabbitMQ. Measures, in one
//! run:
//!
//! - ready time: from starting the D daemons until the start-up status of
//!   all D x N ICs (and the D root managers) was received;
//! - a realm-wide `ping` (header `realm`): time until all D x N answered,
//!   and what each daemon's queue received for it (its
//!   `villas_bus_messages_received_total` before and after: every daemon
//!   binds the whole exchange, so it receives the ping and every answer of
//!   the realm, D x N + 1 messages, and drops the statuses unparsed;
//!   both counters are read once every daemon's stood still for 2 s, so
//!   that start-up statuses still queued are not counted);
//! - the round trip of a `ping` to one IC (sequential, median and p90);
//! - each daemon's resident memory (VmRSS) and CPU time (user + system,
//!   from `/proc/<pid>/stat`) after the pings;
//! - the floor: the bare broker's rate publishing the same number (D x N)
//!   of status-sized messages through one channel to a private queue.
//!
//! ```text
//! cargo bench --bench lab_scale -- 3 10000     # D = 3 daemons, N = 10,000 ICs each
//! ```
//!
//! `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2F`) names the
//! broker. Under `cargo test --all-targets` (no `--bench` argument) the
//! binary does nothing. Every wait is bounded; a timeout exits non-zero.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use villas_client::wire::{status_properties, Binding};
use villas_client::{Session, Subscription, Target};
use villas_sdk::{Action, ActionKind, Headers};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

/// Longest wait for the start-up statuses or a realm-wide ping.
const LONG: Duration = Duration::from_secs(300);
/// Longest wait for one ping's answer, or the API address.
const SHORT: Duration = Duration::from_secs(10);
/// Sequential pings to one IC.
const PINGS: usize = 100;

/// One daemon of the lab.
struct Daemon {
    child: Child,
    log: PathBuf,
    metrics: Option<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_villas-controller"))
}

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2F".into())
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn start_daemon(dir: &Path, exchange: &str, realm: &str, d: usize, n: usize) -> Result<Daemon> {
    let uuid = new_uuid();
    let mut yaml = String::with_capacity(160 * n + 512);
    writeln!(yaml, "uuid: {uuid}")?;
    writeln!(
        yaml,
        "broker:\n  url: \"{}\"\n  exchange: {exchange}",
        amqp_url()
    )?;
    writeln!(yaml, "api:\n  bind: 127.0.0.1\n  port: 0")?;
    writeln!(yaml, "status:\n  heartbeat_interval: 3600\ncomponents:")?;
    for i in 0..n {
        writeln!(
            yaml,
            "  - {{category: simulator, type: dummy, name: \"d{d} dummy {i}\", realm: {realm}, uuid: {}, transition_delay: 0.1}}",
            new_uuid()
        )?;
    }
    let config = dir.join(format!("daemon-{d}.yaml"));
    std::fs::write(&config, yaml)?;
    let log = dir.join(format!("daemon-{d}.log"));
    let state = dir.join(format!("state-{d}"));
    let child = Command::new(binary())
        .arg("-c")
        .arg(&config)
        .arg("daemon")
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", &state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    Ok(Daemon {
        child,
        log,
        metrics: None,
    })
}

/// The daemon's `/metrics` URL, from its `api_addr=` log line.
fn metrics_url(daemon: &Daemon) -> Result<String> {
    let deadline = Instant::now() + SHORT;
    loop {
        let log = std::fs::read_to_string(&daemon.log)?;
        if let Some(addr) = log.lines().find_map(|line| {
            let rest = line.split("api_addr=").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        }) {
            return Ok(format!("http://{addr}/metrics"));
        }
        if Instant::now() >= deadline {
            return Err(format!("no api_addr= in {}", daemon.log.display()).into());
        }
        // Polling a log file written by another process: no event to await.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `villas_bus_messages_received_total` of a daemon.
async fn received(http: &reqwest::Client, url: &str) -> Result<f64> {
    let body = http.get(url).timeout(SHORT).send().await?.text().await?;
    body.lines()
        .filter(|l| l.starts_with("villas_bus_messages_received_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .next()
        .ok_or_else(|| "no villas_bus_messages_received_total".into())
}

/// (VmRSS MB, CPU seconds) of a process.
fn usage(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which ends with ')'): utime is the
    // 12th, stime the 13th of those (fields 14 and 15 of the line).
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let cpu = (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0;
    Ok((rss_kb / 1024.0, cpu))
}

/// Receives statuses until `want` distinct uuids of `among` (or any, if
/// `among` is empty) were seen; returns how long it took.
async fn collect(
    subscription: &mut Subscription,
    want: usize,
    among: &HashSet<String>,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = HashSet::with_capacity(want);
    while seen.len() < want {
        let Some(message) = subscription.next_until(deadline).await? else {
            return Err(
                format!("only {} of {want} answered within {timeout:?}", seen.len()).into(),
            );
        };
        let Some(status) = message.status() else {
            continue;
        };
        let Some(uuid) = status.uuid() else { continue };
        if among.is_empty() || among.contains(uuid) {
            seen.insert(uuid.to_owned());
        }
    }
    Ok(started.elapsed())
}

/// The uuids of the dummies in a daemon's config.
fn dummies_of(dir: &Path, d: usize) -> Result<Vec<String>> {
    let yaml = std::fs::read_to_string(dir.join(format!("daemon-{d}.yaml")))?;
    Ok(yaml
        .lines()
        .filter_map(|l| {
            let rest = l.split("uuid: ").nth(1)?;
            rest.strip_suffix(", transition_delay: 0.1}")
                .map(str::to_owned)
        })
        .collect())
}

async fn run(d: usize, n: usize, dir: &Path) -> Result<String> {
    let exchange = format!("bench-lab-{}", new_uuid());
    let realm = format!("bench-realm-{}", new_uuid());
    let session = Session::open(&Target::new(amqp_url(), exchange.clone())).await?;
    let mut subscription = session.subscribe(&Binding::Everything).await?;
    let mut out = String::new();

    // Ready time.
    let started = Instant::now();
    let mut daemons = Vec::new();
    for i in 0..d {
        daemons.push(start_daemon(dir, &exchange, &realm, i, n)?);
    }
    let mut ics = HashSet::new();
    for i in 0..d {
        ics.extend(dummies_of(dir, i)?);
    }
    collect(&mut subscription, d * n, &ics, LONG).await?;
    let ready = started.elapsed();
    let http = reqwest::Client::new();
    for daemon in &mut daemons {
        daemon.metrics = Some(metrics_url(daemon)?);
    }
    // Each daemon's queue may still hold start-up statuses: count from
    // when every counter stood still.
    let before = settled(&http, &daemons).await?;

    // A realm-wide ping.
    let ping = Action::new(ActionKind::Ping);
    let sent = Instant::now();
    session
        .send(
            &Headers {
                realm: Some(realm.clone()),
                ..Headers::default()
            },
            &ping,
        )
        .await?;
    collect(&mut subscription, d * n, &ics, LONG).await?;
    let realm_ping = sent.elapsed();
    // Every answer went to every daemon's queue too; wait until each
    // counted them all (bounded), then read the counters.
    let deadline = Instant::now() + LONG;
    let mut after = counts(&http, &daemons).await?;
    while after
        .iter()
        .zip(&before)
        .any(|(a, b)| a - b < (d * n) as f64)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = counts(&http, &daemons).await?;
    }
    let after = settled(&http, &daemons).await?;

    // Round trips to one IC.
    let one = dummies_of(dir, 0)?.into_iter().next().ok_or("no IC")?;
    let only: HashSet<String> = [one.clone()].into();
    let mut rtts = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let sent = Instant::now();
        session.send(&Headers::uuid(&one), &ping).await?;
        collect(&mut subscription, 1, &only, SHORT).await?;
        rtts.push(sent.elapsed());
    }
    rtts.sort();

    // The floor: the same number of statuses through the bare broker.
    let floor = floor(&session, &exchange, d * n).await?;

    writeln!(
        out,
        "lab_scale: D = {d} daemons x N = {n} dummy ICs, one realm, one broker"
    )?;
    writeln!(out, "| measure | value |")?;
    writeln!(out, "|---|---|")?;
    writeln!(
        out,
        "| ready (all D x N start-up statuses) | {:.2} s |",
        ready.as_secs_f64()
    )?;
    writeln!(
        out,
        "| realm-wide ping answered by all D x N | {:.2} s |",
        realm_ping.as_secs_f64()
    )?;
    writeln!(
        out,
        "| ping round trip to one IC (p50 / p90 of {PINGS}) | {:.2} ms / {:.2} ms |",
        rtts[PINGS / 2].as_secs_f64() * 1e3,
        rtts[PINGS * 9 / 10].as_secs_f64() * 1e3
    )?;
    writeln!(
        out,
        "| bare broker: {} statuses published and received | {:.2} s ({:.0}/s) |",
        d * n,
        floor.as_secs_f64(),
        (d * n) as f64 / floor.as_secs_f64()
    )?;
    for (i, daemon) in daemons.iter().enumerate() {
        let (rss, cpu) = usage(daemon.child.id())?;
        writeln!(
            out,
            "| daemon {i}: VmRSS / CPU time / messages its queue received per realm-wide ping | {rss:.1} MB / {cpu:.1} s / {} |",
            after[i] - before[i]
        )?;
    }
    drop(daemons);
    session.delete_exchange().await?;
    session.close().await;
    Ok(out)
}

async fn counts(http: &reqwest::Client, daemons: &[Daemon]) -> Result<Vec<f64>> {
    let mut counts = Vec::new();
    for daemon in daemons {
        counts.push(received(http, daemon.metrics.as_deref().unwrap_or_default()).await?);
    }
    Ok(counts)
}

/// How long every daemon's counter must stand still to count as settled.
const STILL: Duration = Duration::from_secs(2);

/// The daemons' `villas_bus_messages_received_total` once none of them
/// changed for [`STILL`] (nothing else is sent meanwhile: the heartbeat
/// is an hour), bounded by [`LONG`].
async fn settled(http: &reqwest::Client, daemons: &[Daemon]) -> Result<Vec<f64>> {
    let deadline = Instant::now() + LONG;
    let mut last = counts(http, daemons).await?;
    let mut since = Instant::now();
    while since.elapsed() < STILL {
        if Instant::now() >= deadline {
            return Err(format!("counters still moving after {LONG:?}: {last:?}").into());
        }
        // Polling another process's counters: no event to await.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = counts(http, daemons).await?;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    Ok(last)
}

/// Publishes `count` status-sized messages to a private exchange and
/// receives them back; the time it took.
async fn floor(session: &Session, exchange: &str, count: usize) -> Result<Duration> {
    let floor_exchange = format!("{exchange}-floor");
    let target = Target::new(amqp_url(), floor_exchange.clone());
    let publisher = Session::open(&target).await?;
    let mut subscription = publisher.subscribe(&Binding::Everything).await?;
    let body = serde_json::json!({
        "status": {"state": "idle", "uptime": 1.0, "host": "bench", "version": "x"},
        "properties": {"uuid": new_uuid(), "name": "bench dummy", "category": "simulator", "type": "dummy", "realm": "r"},
        "schema": {}, "when": 1.0
    })
    .to_string();
    let headers = Headers {
        realm: Some("r".into()),
        category: Some("simulator".into()),
        type_name: Some("dummy".into()),
        uuid: Some(new_uuid()),
    };
    let started = Instant::now();
    let channel = publisher.channel();
    for _ in 0..count {
        // Not awaiting the confirms one by one: the broker's rate.
        let _confirm = channel
            .basic_publish(
                floor_exchange.as_str().into(),
                "".into(),
                lapin::options::BasicPublishOptions::default(),
                body.as_bytes(),
                status_properties(&headers),
            )
            .await?;
    }
    let deadline = tokio::time::Instant::now() + LONG;
    let mut got = 0;
    while got < count {
        if subscription.next_until(deadline).await?.is_none() {
            return Err(format!("floor: {got} of {count} received").into());
        }
        got += 1;
    }
    let took = started.elapsed();
    publisher.delete_exchange().await?;
    publisher.close().await;
    let _ = session;
    Ok(took)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("lab_scale: skipped (run it with `cargo bench --bench lab_scale -- D N`)");
        return ExitCode::SUCCESS;
    }
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let (d, n) = match numbers.as_slice() {
        [d, n, ..] if *d > 0 && *n > 0 => (*d, *n),
        _ => (3, 1000),
    };
    let dir = match tempfile::Builder::new().prefix("villas-lab-").tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("lab_scale: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lab_scale: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(d, n, dir.path())) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "lab_scale: FAILED: {error} (logs in {})",
                dir.path().display()
            );
            let _ = dir.keep();
            ExitCode::FAILURE
        }
    }
}
