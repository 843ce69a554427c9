//! End-to-end bench of the real daemon over a real RabbitMQ broker.
//!
//! It starts the `villas-controller` binary with N `simulator/dummy`
//! components in one realm (N = `BENCH_ICS`, default 10,000) on a fresh
//! headers exchange `bench-<uuid>`, watches that exchange the way VILLASweb
//! does (a private queue bound with no arguments), waits for the start-up
//! status of all N, and then measures:
//!
//! a. sequential `ping` round trips to one IC (header `uuid`), p50/p90/p99;
//! b. the same number of round trips through a bare lapin echo (a tokio task
//!    that republishes every message from one plain exchange to another)
//!    over the same broker, interleaved with (a), and the ratio of the two
//!    medians: the daemon's own share of the latency;
//! c. a realm-wide `ping` (header `realm`): time until all N distinct uuids
//!    answered, 3 rounds (plus one `uuid: ""` "everyone" round);
//! d. the daemon's resident memory (VmRSS, VmHWM) after start-up and after
//!    the pings;
//! f. three scrapes of its `GET /metrics` (the HTTP API on an ephemeral
//!    port, read from the daemon's log): body size, series, time, and the
//!    resident memory after the third;
//! e. the floor under (c): the echo task publishes N copies of a real status
//!    message (same properties, four headers, and it receives its own
//!    messages back, as the daemon does), awaiting each publish like the
//!    daemon's publish loop, then all in flight at once.
//!
//! It prints a summary table, stops the daemon with SIGTERM, and deletes the
//! exchanges and the daemon's queue. Every wait is bounded; a timeout or a
//! failure exits non-zero.
//!
//! Run (the broker must be up; `cargo bench` builds the daemon binary, in
//! the bench profile, together with this bench):
//!
//! ```text
//! cargo bench --bench bus_roundtrip
//! BENCH_ICS=1000 cargo bench --bench bus_roundtrip
//! ```
//!
//! Environment: `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2F`),
//! `BENCH_ICS` (10000), `BENCH_PINGS` (500), `BENCH_REALM_ROUNDS` (3),
//! `BENCH_DAEMON_BIN` (another daemon binary), `BENCH_DAEMON_LOG` (its log
//! level, default `info`), `BENCH_KEEP_LOG=1` (print where the daemon's log
//! is kept). Under `cargo test --all-targets` (no `--bench` argument) the
//! binary does nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use lapin::message::Delivery;
use lapin::options::{
    BasicPublishOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Consumer, ExchangeKind};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use villas_client::connect::connect;
use villas_client::wire::{
    action_properties, bind_private_queue, bind_queue, consume, declare_exchange, publish,
    status_properties, string_table, text_of, Binding, STATUS_MESSAGE_TYPE,
};
use villas_client::{Message, Subscription};
use villas_sdk::{Headers, State};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

/// Pings sent before measuring, to each side.
const WARM_UP: usize = 20;
/// Longest wait for one ping's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a realm-wide ping to be answered by every IC.
const REALM_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the daemon to exit after SIGTERM (its own deadline is 10 s).
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Scrapes of `/metrics` (f).
const SCRAPES: usize = 3;
/// Longest wait for one scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the daemon's `api_addr=` log line.
const API_TIMEOUT: Duration = Duration::from_secs(30);

macro_rules! fail {
    ($($arg:tt)*) => { return Err(format!($($arg)*).into()) };
}

/// What the run is configured with.
struct Config {
    url: String,
    ics: usize,
    pings: usize,
    realm_rounds: usize,
    startup_timeout: Duration,
    daemon_bin: PathBuf,
    daemon_log_level: String,
    keep_log: bool,
}

impl Config {
    fn from_env() -> Result<Self> {
        let number = |name: &str, default: usize| -> Result<usize> {
            match std::env::var(name) {
                Ok(text) => text
                    .trim()
                    .parse()
                    .map_err(|e| format!("{name}={text:?}: {e}").into()),
                Err(_) => Ok(default),
            }
        };
        let ics = number("BENCH_ICS", 10_000)?;
        if ics == 0 {
            fail!("BENCH_ICS must be at least 1");
        }
        Ok(Config {
            url: std::env::var("AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2F".into()),
            ics,
            pings: number("BENCH_PINGS", 500)?.max(1),
            realm_rounds: number("BENCH_REALM_ROUNDS", 3)?,
            // Generous: start-up is measured, not bounded tightly.
            startup_timeout: Duration::from_secs(60 + (ics / 100) as u64),
            daemon_bin: std::env::var_os("BENCH_DAEMON_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_villas-controller"))),
            daemon_log_level: std::env::var("BENCH_DAEMON_LOG").unwrap_or_else(|_| "info".into()),
            keep_log: std::env::var("BENCH_KEEP_LOG").is_ok_and(|v| v == "1"),
        })
    }
}

/// Broker object names of one run.
struct Names {
    daemon_uuid: String,
    realm: String,
    exchange: String,
    echo_in: String,
    echo_out: String,
    daemon_queue: String,
}

impl Names {
    fn new() -> Self {
        let run = uuid::Uuid::new_v4().hyphenated().to_string();
        let daemon_uuid = uuid::Uuid::new_v4().hyphenated().to_string();
        Names {
            realm: format!("bench-realm-{}", &run[..8]),
            exchange: format!("bench-{run}"),
            echo_in: format!("bench-{run}-echo-in"),
            echo_out: format!("bench-{run}-echo-out"),
            daemon_queue: format!("villas-controller.{daemon_uuid}"),
            daemon_uuid,
        }
    }
}

/// The daemon process; killed (SIGKILL) if dropped while still running.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the daemon has exited.
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            fail!("the daemon exited early ({status})");
        }
        Ok(())
    }

    /// SIGTERM, then waits (bounded) for the exit.
    fn terminate(&mut self) -> Result<(Duration, std::process::ExitStatus)> {
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            fail!("kill -TERM {} failed: {status}", self.pid());
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((started.elapsed(), status));
            }
            if started.elapsed() > EXIT_TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                fail!("the daemon did not exit within {EXIT_TIMEOUT:?} of SIGTERM; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident memory of a process, kB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
}

fn memory_of(pid: u32) -> Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
    })
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The HTTP API's address from the daemon's `HTTP API listening` log line
/// (`api_addr=127.0.0.1:PORT`), waiting for it until `deadline`.
fn api_addr(daemon: &mut Daemon, deadline: Instant) -> Result<String> {
    loop {
        let log = std::fs::read_to_string(&daemon.log)?;
        let found = log.lines().find_map(|line| {
            let rest = line.split("api_addr=").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        });
        if let Some(addr) = found {
            return Ok(addr);
        }
        daemon.check_alive()?;
        if Instant::now() >= deadline {
            fail!("no api_addr= line in the daemon's log within {API_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One scrape of `/metrics`.
struct Scrape {
    bytes: usize,
    /// Sample lines (not `#` comments).
    series: usize,
    took: Duration,
}

async fn scrape(http: &reqwest::Client, url: &str) -> Result<Scrape> {
    let started = Instant::now();
    let response = http.get(url).timeout(SCRAPE_TIMEOUT).send().await?;
    if !response.status().is_success() {
        fail!("GET {url}: {}", response.status());
    }
    let body = response.bytes().await?;
    let took = started.elapsed();
    let series = body
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
        .count();
    Ok(Scrape {
        bytes: body.len(),
        series,
        took,
    })
}

/// `(uuid, state)` of a message if it is one of the daemon's statuses.
fn status_of(message: &Message) -> Option<(String, State)> {
    if !message.is_status_message() {
        return None;
    }
    message.uuid_and_state()
}

/// The next message, or an error at `deadline`.
async fn next_before(
    subscription: &mut Subscription,
    deadline: Instant,
    what: &str,
) -> Result<Message> {
    match subscription.next_until(deadline.into()).await {
        Ok(Some(message)) => Ok(message),
        Ok(None) => fail!("timed out while {what}"),
        Err(error) => fail!("{error} while {what}"),
    }
}

/// Consumes until nothing arrived for `quiet` (at most `max`); returns the
/// number of messages drained.
async fn drain(subscription: &mut Subscription, quiet: Duration, max: Duration) -> Result<usize> {
    Ok(subscription
        .drain(quiet, (Instant::now() + max).into())
        .await?)
}

/// An action's properties (as VILLASweb sends actions: JSON, persistent,
/// string headers).
fn action_with(headers: &[(&str, &str)]) -> BasicProperties {
    action_properties(string_table(headers.iter().copied()))
}

/// A private, exclusive queue bound to `exchanges` with no arguments, and a
/// no-ack consumer on it.
async fn private_consumer(channel: &Channel, exchanges: &[&str]) -> Result<Consumer> {
    let queue = bind_private_queue(channel, exchanges[0], &Binding::Everything).await?;
    for exchange in &exchanges[1..] {
        bind_queue(channel, &queue, exchange, &Binding::Everything).await?;
    }
    Ok(consume(channel, queue).await?)
}

fn write_config(dir: &Path, config: &Config, names: &Names, uuids: &[String]) -> Result<PathBuf> {
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let mut yaml = String::with_capacity(160 * uuids.len() + 512);
    writeln!(yaml, "# villas-controller bench configuration (generated)")?;
    writeln!(yaml, "uuid: {}", quote(&names.daemon_uuid))?;
    writeln!(yaml, "broker:")?;
    writeln!(yaml, "  url: {}", quote(&config.url))?;
    writeln!(yaml, "  exchange: {}", quote(&names.exchange))?;
    // On an ephemeral port (logged as `api_addr=`), for the scrapes (f).
    writeln!(yaml, "api:")?;
    writeln!(yaml, "  bind: 127.0.0.1")?;
    writeln!(yaml, "  port: 0")?;
    writeln!(yaml, "status:")?;
    // Long, so that heartbeats (spread over the period) are rare during the run.
    writeln!(yaml, "  heartbeat_interval: 3600")?;
    writeln!(yaml, "components:")?;
    for (n, uuid) in uuids.iter().enumerate() {
        writeln!(
            yaml,
            "  - {{category: simulator, type: dummy, name: \"bench dummy {n}\", realm: {}, uuid: {}, transition_delay: 0.1}}",
            quote(&names.realm),
            quote(uuid)
        )?;
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// Header of an echo trigger: publish this many messages (a burst).
const BURST_HEADER: &str = "x-bench-burst";
/// Header of an echo trigger: `sequential` (await each publish, as the
/// daemon's publish loop does) or `pipelined` (all publishes in flight).
const MODE_HEADER: &str = "x-bench-mode";

fn header_text(delivery: &Delivery, name: &str) -> Option<String> {
    text_of(delivery.properties.headers().as_ref()?.inner().get(name)?)
}

/// The echo: consumes its queue on its own connection and answers on the
/// channel it consumes on, as the daemon does. Its queue is bound to both
/// `echo-in` and `echo-out`, so, like the daemon, it receives its own
/// answers back and drops them by their `type` property.
///
/// - A plain message is republished once, unchanged but for `type`.
/// - A trigger (`x-bench-burst: N`) makes it publish N copies of the
///   trigger's body (a real status message) with a status's properties
///   and four headers: the floor under the daemon's realm-wide answer.
async fn echo_task(channel: Channel, mut consumer: Consumer, out: String) {
    while let Some(Ok(delivery)) = consumer.next().await {
        if villas_client::wire::is_status_message(&delivery.properties) {
            continue;
        }
        let burst = header_text(&delivery, BURST_HEADER).and_then(|n| n.parse::<usize>().ok());
        let Some(burst) = burst else {
            let properties = delivery
                .properties
                .clone()
                .with_type(STATUS_MESSAGE_TYPE.into());
            if publish(&channel, &out, properties, &delivery.data)
                .await
                .is_err()
            {
                return;
            }
            continue;
        };
        let headers = Headers {
            realm: Some("bench".into()),
            category: Some("simulator".into()),
            type_name: Some("dummy".into()),
            uuid: Some("00000000-0000-4000-8000-000000000000".into()),
        };
        let properties = status_properties(&headers).with_app_id("villas-bench-echo".into());
        let pipelined = header_text(&delivery, MODE_HEADER).as_deref() == Some("pipelined");
        let body = delivery.data;
        let sent = if pipelined {
            futures_util::future::join_all((0..burst).map(|_| {
                channel.basic_publish(
                    out.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties.clone(),
                )
            }))
            .await
            .into_iter()
            .all(|result| result.is_ok())
        } else {
            let mut ok = true;
            for _ in 0..burst {
                if publish(&channel, &out, properties.clone(), &body)
                    .await
                    .is_err()
                {
                    ok = false;
                    break;
                }
            }
            ok
        };
        if !sent {
            return;
        }
    }
}

struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    min: f64,
    max: f64,
    mean: f64,
}

/// Percentiles of a histogram recorded in microseconds, in milliseconds.
fn percentiles(histogram: &Histogram<u64>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        p50: ms(histogram.value_at_quantile(0.50)),
        p90: ms(histogram.value_at_quantile(0.90)),
        p99: ms(histogram.value_at_quantile(0.99)),
        min: ms(histogram.min()),
        max: ms(histogram.max()),
        mean: histogram.mean() / 1000.0,
    }
}

struct RealmRound {
    label: String,
    /// Whether the < 1 s target applies (not to the lapin floor).
    targeted: bool,
    first: Duration,
    all: Duration,
    answers: usize,
    expected: usize,
}

struct Report {
    config_bytes: u64,
    startup_first: Duration,
    startup_all: Duration,
    startup_statuses: usize,
    memory_started: Memory,
    memory_after: Memory,
    scrapes: Vec<Scrape>,
    memory_scraped: Memory,
    daemon: Histogram<u64>,
    echo: Histogram<u64>,
    realm: Vec<RealmRound>,
    shutdown: Duration,
    exit: String,
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

fn print_report(config: &Config, report: &Report) {
    let daemon = percentiles(&report.daemon);
    let echo = percentiles(&report.echo);
    let ratio = daemon.p50 / echo.p50.max(0.001);
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "== bus_roundtrip: {} dummy ICs, {} pings, broker {} ==",
        config.ics,
        config.pings,
        villas_client::redact_url(&config.url)
    );
    let _ = writeln!(
        out,
        "start-up: config {:.1} MB; first status after {:.3} s, all {} after {:.3} s ({} status messages seen)",
        report.config_bytes as f64 / 1e6,
        report.startup_first.as_secs_f64(),
        config.ics,
        report.startup_all.as_secs_f64(),
        report.startup_statuses
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| round trip (ms)        |    p50 |    p90 |    p99 |    min |    max |   mean |"
    );
    let _ = writeln!(
        out,
        "|------------------------|--------|--------|--------|--------|--------|--------|"
    );
    for (name, p) in [("daemon ping (1 IC)", &daemon), ("bare lapin echo", &echo)] {
        let _ = writeln!(
            out,
            "| {name:<22} | {:>6.3} | {:>6.3} | {:>6.3} | {:>6.3} | {:>6.3} | {:>6.3} |",
            p.p50, p.p90, p.p99, p.min, p.max, p.mean
        );
    }
    let _ = writeln!(
        out,
        "daemon p50 / echo p50 = {ratio:.2} (target <= 1.5: {})",
        pass(ratio <= 1.5)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| fan-out ping               | first answer (ms) | all answered (ms) |     answers | target < 1 s |"
    );
    let _ = writeln!(
        out,
        "|----------------------------|-------------------|-------------------|-------------|--------------|"
    );
    for round in &report.realm {
        let _ = writeln!(
            out,
            "| {:<26} | {:>17.1} | {:>17.1} | {:>11} | {:<12} |",
            round.label,
            round.first.as_secs_f64() * 1e3,
            round.all.as_secs_f64() * 1e3,
            format!("{}/{}", round.answers, round.expected),
            if round.targeted {
                pass(round.all < Duration::from_secs(1))
            } else {
                "(floor)"
            }
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| GET /metrics         | body (MB) |  series | time (ms) | target < 10 MB |"
    );
    let _ = writeln!(
        out,
        "|----------------------|-----------|---------|-----------|----------------|"
    );
    for (n, scrape) in report.scrapes.iter().enumerate() {
        let _ = writeln!(
            out,
            "| scrape #{:<12} | {:>9.2} | {:>7} | {:>9.1} | {:<14} |",
            n + 1,
            scrape.bytes as f64 / 1e6,
            scrape.series,
            scrape.took.as_secs_f64() * 1e3,
            pass(scrape.bytes < 10_000_000)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| daemon memory        | VmRSS (MB) | VmHWM (MB) | target          |"
    );
    let _ = writeln!(
        out,
        "|----------------------|------------|------------|-----------------|"
    );
    for (name, m, target) in [
        ("after start-up", report.memory_started, 100.0),
        ("after the pings", report.memory_after, 100.0),
        ("after 3 scrapes", report.memory_scraped, 60.0),
    ] {
        let _ = writeln!(
            out,
            "| {name:<20} | {:>10.1} | {:>10.1} | {:<15} |",
            mb(m.rss_kb),
            mb(m.hwm_kb),
            format!("< {target} MB: {}", pass(mb(m.rss_kb) < target))
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "shutdown: exited {:.3} s after SIGTERM ({})",
        report.shutdown.as_secs_f64(),
        report.exit
    );
    println!("{out}");
}

async fn run(config: &Config, names: &Names, workdir: &Path) -> Result<Report> {
    if !config.daemon_bin.is_file() {
        fail!(
            "daemon binary {} not found (run through `cargo bench --bench bus_roundtrip`, or set BENCH_DAEMON_BIN)",
            config.daemon_bin.display()
        );
    }
    let uuids: Vec<String> = (0..config.ics)
        .map(|_| uuid::Uuid::new_v4().hyphenated().to_string())
        .collect();
    let config_path = write_config(workdir, config, names, &uuids)?;
    let config_bytes = std::fs::metadata(&config_path)?.len();

    // The client: watches the daemon's exchange like VILLASweb.
    let client = connect(&config.url, None, "villas-bench-client")
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", config.url))?;
    let channel = client.create_channel().await?;
    declare_exchange(&channel, &names.exchange).await?;
    let mut watch = Subscription::from(private_consumer(&channel, &[&names.exchange]).await?);

    // The echo: its own connection, like the daemon's.
    let echo_connection = connect(&config.url, None, "villas-bench-echo").await?;
    let echo_channel = echo_connection.create_channel().await?;
    for exchange in [&names.echo_in, &names.echo_out] {
        echo_channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let echo_consumer = private_consumer(&echo_channel, &[&names.echo_in, &names.echo_out]).await?;
    let echo = tokio::spawn(echo_task(
        echo_channel.clone(),
        echo_consumer,
        names.echo_out.clone(),
    ));
    let reply_channel = client.create_channel().await?;
    let mut replies =
        Subscription::from(private_consumer(&reply_channel, &[&names.echo_out]).await?);

    // The daemon.
    let log = workdir.join("daemon.log");
    let log_file = std::fs::File::create(&log)?;
    let spawned = Instant::now();
    let child = Command::new(&config.daemon_bin)
        .arg("-c")
        .arg(&config_path)
        .arg("-d")
        .arg(&config.daemon_log_level)
        .arg("daemon")
        // A state directory of its own: runs do not share the default one.
        .env("XDG_DATA_HOME", workdir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", config.daemon_bin.display()))?;
    let mut daemon = Daemon { child, log };
    let pid = daemon.pid();
    eprintln!(
        "bus_roundtrip: daemon pid {pid}, {} ICs, exchange {}, log {}",
        config.ics,
        names.exchange,
        daemon.log.display()
    );

    // Start-up: every IC publishes its status once.
    let expected: HashSet<&str> = uuids.iter().map(String::as_str).collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(config.ics);
    let mut startup_first = None;
    let mut startup_statuses = 0;
    let startup_deadline = spawned + config.startup_timeout;
    while seen.len() < config.ics {
        daemon.check_alive()?;
        let step = (Instant::now() + Duration::from_secs(1)).min(startup_deadline);
        let message = match watch.next_until(step.into()).await {
            Ok(Some(message)) => message,
            Err(error) => fail!("{error} during start-up"),
            Ok(None) if Instant::now() >= startup_deadline => fail!(
                "timed out after {:?} waiting for start-up statuses ({} of {} seen)",
                config.startup_timeout,
                seen.len(),
                config.ics
            ),
            Ok(None) => continue,
        };
        if let Some((uuid, state)) = status_of(&message) {
            startup_statuses += 1;
            startup_first.get_or_insert_with(|| spawned.elapsed());
            if expected.contains(uuid.as_str()) {
                if state != State::Idle {
                    fail!("IC {uuid} started in state {state}, not idle");
                }
                seen.insert(uuid);
            }
        }
    }
    let startup_all = spawned.elapsed();
    // Let the tail (the manager's status, stray heartbeats) pass.
    startup_statuses += drain(
        &mut watch,
        Duration::from_millis(500),
        Duration::from_secs(5),
    )
    .await?;
    let memory_started = memory_of(pid)?;

    // a + b: sequential round trips, daemon and echo interleaved.
    let target = uuids[uuids.len() / 2].clone();
    let ping = br#"{"action":"ping"}"#;
    let ping_one = action_with(&[("uuid", &target)]);
    let mut daemon_histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut echo_histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    // A real status message, the payload of the lapin floor bursts (e).
    let mut status_body = Vec::new();
    for n in 0..WARM_UP + config.pings {
        let measured = n >= WARM_UP;

        let sent = Instant::now();
        publish(&channel, &names.exchange, ping_one.clone(), ping).await?;
        let deadline = sent + PING_TIMEOUT;
        loop {
            let message = next_before(&mut watch, deadline, "waiting for a ping answer").await?;
            if let Some((uuid, _)) = status_of(&message) {
                if uuid == target {
                    status_body = message.body;
                    break;
                }
            }
        }
        if measured {
            daemon_histogram.saturating_record(sent.elapsed().as_micros() as u64);
        }

        let sent = Instant::now();
        publish(&channel, &names.echo_in, ping_one.clone(), ping).await?;
        next_before(
            &mut replies,
            sent + PING_TIMEOUT,
            "waiting for an echo reply",
        )
        .await?;
        if measured {
            echo_histogram.saturating_record(sent.elapsed().as_micros() as u64);
        }
    }
    // c: fan-out pings, each answered by every IC in the realm.
    let mut realm = Vec::new();
    let mut rounds: Vec<(String, (&str, &str), usize)> = (1..=config.realm_rounds)
        .map(|n| {
            (
                format!("realm #{n}"),
                ("realm", names.realm.as_str()),
                config.ics,
            )
        })
        .collect();
    // The start-up ping VILLASweb sends; the manager answers too.
    rounds.push(("uuid \"\" (everyone)".into(), ("uuid", ""), config.ics + 1));
    // The manager (daemon uuid) is outside the realm, so a realm round
    // completes only with every IC; the everyone round needs the manager too.
    for (label, header, expected_answers) in rounds {
        drain(
            &mut watch,
            Duration::from_millis(300),
            Duration::from_secs(10),
        )
        .await?;
        let mut answered: HashSet<String> = HashSet::with_capacity(expected_answers);
        let sent = Instant::now();
        publish(&channel, &names.exchange, action_with(&[header]), ping).await?;
        let deadline = sent + REALM_TIMEOUT;
        let mut first = None;
        while answered.len() < expected_answers {
            let what = format!(
                "waiting for {label} answers ({} of {expected_answers})",
                answered.len()
            );
            let message = next_before(&mut watch, deadline, &what).await?;
            if let Some((uuid, _)) = status_of(&message) {
                // Only the addressed ICs count (not a stray heartbeat).
                if expected.contains(uuid.as_str()) || uuid == names.daemon_uuid {
                    first.get_or_insert_with(|| sent.elapsed());
                    answered.insert(uuid);
                }
            }
        }
        realm.push(RealmRound {
            label,
            targeted: true,
            first: first.unwrap_or_default(),
            all: sent.elapsed(),
            answers: answered.len(),
            expected: expected_answers,
        });
    }
    // e: the lapin floor under (c): the echo publishes N status messages
    // from one task, awaiting each publish as the daemon's publish loop
    // does, then all in flight at once.
    for mode in ["sequential", "sequential", "pipelined", "pipelined"] {
        drain(
            &mut replies,
            Duration::from_millis(300),
            Duration::from_secs(10),
        )
        .await?;
        let count = config.ics.to_string();
        let sent = Instant::now();
        publish(
            &channel,
            &names.echo_in,
            action_with(&[(BURST_HEADER, &count), (MODE_HEADER, mode)]),
            &status_body,
        )
        .await?;
        let deadline = sent + REALM_TIMEOUT;
        let mut first = None;
        let mut received = 0;
        while received < config.ics {
            let what = format!("waiting for an echo burst ({received} of {})", config.ics);
            next_before(&mut replies, deadline, &what).await?;
            first.get_or_insert_with(|| sent.elapsed());
            received += 1;
        }
        realm.push(RealmRound {
            label: format!("lapin floor, {mode}"),
            targeted: false,
            first: first.unwrap_or_default(),
            all: sent.elapsed(),
            answers: received,
            expected: config.ics,
        });
    }
    echo.abort();
    drain(
        &mut watch,
        Duration::from_millis(300),
        Duration::from_secs(10),
    )
    .await?;
    let memory_after = memory_of(pid)?;

    // f: scrapes of /metrics, then the memory they leave behind.
    let addr = api_addr(&mut daemon, Instant::now() + API_TIMEOUT)?;
    let metrics_url = format!("http://{addr}/metrics");
    let http = reqwest::Client::new();
    let mut scrapes = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        scrapes.push(scrape(&http, &metrics_url).await?);
    }
    let memory_scraped = memory_of(pid)?;

    // Stop the daemon.
    let (shutdown, exit) = daemon.terminate()?;
    let _ = client.close(200, "bench done".into()).await;
    let _ = echo_connection.close(200, "bench done".into()).await;
    if config.keep_log {
        eprintln!("bus_roundtrip: daemon log kept at {}", daemon.log.display());
    }
    Ok(Report {
        config_bytes,
        startup_first: startup_first.unwrap_or_default(),
        startup_all,
        startup_statuses,
        memory_started,
        memory_after,
        scrapes,
        memory_scraped,
        daemon: daemon_histogram,
        echo: echo_histogram,
        realm,
        shutdown,
        exit: exit.to_string(),
    })
}

/// Deletes what the run left on the broker (bounded; errors are reported).
async fn clean_up(config: &Config, names: &Names) -> Result<()> {
    let connection = connect(&config.url, None, "villas-bench-cleanup").await?;
    let channel = connection.create_channel().await?;
    for exchange in [&names.exchange, &names.echo_in, &names.echo_out] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    channel
        .queue_delete(
            names.daemon_queue.as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await?;
    let _ = connection.close(200, "bench done".into()).await;
    Ok(())
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not,
    // and must not start a daemon.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("bus_roundtrip: skipped (run it with `cargo bench --bench bus_roundtrip`)");
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("bus_roundtrip: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bus_roundtrip: cannot start tokio: {error}");
            return ExitCode::FAILURE;
        }
    };
    let workdir = match tempfile::Builder::new().prefix("villas-bench-").tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("bus_roundtrip: cannot create a temporary directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    let names = Names::new();
    let result = runtime.block_on(run(&config, &names, workdir.path()));
    let cleaned = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), clean_up(&config, &names)).await
    });
    match cleaned {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("bus_roundtrip: clean-up failed: {error}"),
        Err(_) => eprintln!("bus_roundtrip: clean-up timed out"),
    }
    let code = match result {
        Ok(report) => {
            print_report(&config, &report);
            ExitCode::SUCCESS
        }
        Err(error) => {
            let log = workdir.path().join("daemon.log");
            eprintln!("bus_roundtrip: FAILED: {error}");
            eprintln!(
                "--- last lines of the daemon's log ---\n{}",
                log_tail(&log, 30)
            );
            ExitCode::FAILURE
        }
    };
    if config.keep_log {
        let _ = workdir.keep();
    }
    code
}
