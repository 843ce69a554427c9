//! `villas-controller simulator [-r] [-c] [-t] [-u] ACTION ...`: sends one
//! action with the reference's flags, plus `--wait STATE [--timeout S]` to
//! follow the addressed ICs until they reach a state (for scripts), and
//! `ping` printing the replies (JSON lines as the reference, or `--table`).
//!
//! With `--wait`, the addressed ICs are first found by a ping with the
//! same headers (for `create`/`delete`: the uuid in the parameters; a
//! `create` without one gets a fresh v4 uuid so it can be followed).

use super::params::mapping;
use super::session::{next_until, Received, Session};
use super::table::IcTable;
use super::wait::{Progress, Verdict, Waiter};
use super::{identity_of, parse_seconds, print_line, ClientError, Filter, Target};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use villas_sdk::protocol::{unix_now, StatusView};
use villas_sdk::{ActionKind, Headers, State};

/// How long `ping` collects replies by default.
const PING_WINDOW: f64 = 2.0;
/// How long `--wait` waits by default.
const WAIT_TIMEOUT: f64 = 60.0;
/// How long `--wait` collects answers to its discovery ping when the
/// filter may address several ICs.
const DISCOVERY_WINDOW: Duration = Duration::from_secs(1);

/// `simulator` arguments.
#[derive(Debug, clap::Args)]
pub struct SimulatorArgs {
    /// Which ICs the action addresses (any header matches).
    #[command(flatten)]
    pub filter: Filter,
    /// Wait until every addressed IC is in STATE; exit 1 if one ends in
    /// error or refuses the action, 124 on timeout.
    #[arg(long, global = true, value_name = "STATE", value_parser = parse_state)]
    pub wait: Option<State>,
    /// Seconds: how long --wait waits (default 60), or how long ping
    /// collects replies (default 2).
    #[arg(long, global = true, value_name = "S", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// ping: print the replies as a table instead of JSON lines.
    #[arg(long, global = true)]
    pub table: bool,
    /// The action.
    #[command(subcommand)]
    pub action: SimulatorAction,
}

/// The actions.
#[derive(Debug, clap::Subcommand)]
pub enum SimulatorAction {
    /// Ping the ICs and print their replies.
    Ping,
    /// Start a simulation.
    Start(StartArgs),
    /// Stop a running simulation.
    Stop,
    /// Pause a running simulation.
    Pause,
    /// Resume a paused simulation.
    Resume,
    /// Reset an IC (from any state, error included) to idle.
    Reset,
    /// Shut an IC down.
    Shutdown,
    /// Create a component (sent to a manager).
    Create(ParameterArgs),
    /// Delete a component (sent to a manager; parameters {uuid: ...}).
    Delete(ParameterArgs),
}

/// `-p`/`-P`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ParameterArgs {
    /// Parameters (YAML or JSON mapping).
    #[arg(short = 'p', long, value_name = "YAMLorJSON")]
    pub parameters: Option<String>,
    /// Parameters from a file (its keys update -p's).
    #[arg(short = 'P', long, value_name = "FILE")]
    pub parameters_file: Option<PathBuf>,
}

/// `start`'s options, the reference's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StartArgs {
    /// Parameters, model and results.
    #[command(flatten)]
    pub parameters: ParameterArgs,
    /// Model location (YAML or JSON mapping).
    #[arg(short = 'm', long, value_name = "YAMLorJSON")]
    pub model: Option<String>,
    /// Model location from a file.
    #[arg(short = 'M', long, value_name = "FILE")]
    pub model_file: Option<PathBuf>,
    /// Results location (YAML or JSON mapping).
    #[arg(short = 'r', long, value_name = "YAMLorJSON")]
    pub results: Option<String>,
    /// Results location from a file.
    #[arg(short = 'R', long, value_name = "FILE")]
    pub results_file: Option<PathBuf>,
    /// When to start: unix seconds, or +SECONDS from now.
    #[arg(short = 'w', long, value_name = "TS", value_parser = parse_when)]
    pub when: Option<f64>,
}

fn parse_state(text: &str) -> Result<State, String> {
    text.parse::<State>().map_err(|e| e.to_string())
}

/// `1700000000.5` or `+10` (seconds from now).
fn parse_when(text: &str) -> Result<f64, String> {
    let (relative, number) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => {
            Ok(if relative { unix_now() + value } else { value })
        }
        _ => Err(format!(
            "{text:?} is neither unix seconds nor +SECONDS from now"
        )),
    }
}

impl SimulatorAction {
    /// The protocol action.
    pub fn kind(&self) -> ActionKind {
        match self {
            SimulatorAction::Ping => ActionKind::Ping,
            SimulatorAction::Start(_) => ActionKind::Start,
            SimulatorAction::Stop => ActionKind::Stop,
            SimulatorAction::Pause => ActionKind::Pause,
            SimulatorAction::Resume => ActionKind::Resume,
            SimulatorAction::Reset => ActionKind::Reset,
            SimulatorAction::Shutdown => ActionKind::Shutdown,
            SimulatorAction::Create(_) => ActionKind::Create,
            SimulatorAction::Delete(_) => ActionKind::Delete,
        }
    }

    /// The message body, built (and its inputs checked) before connecting.
    pub fn body(&self) -> Result<Map<String, Value>, ClientError> {
        let mut body = Map::new();
        body.insert("action".into(), self.kind().as_str().into());
        let parameters = |p: &ParameterArgs| {
            mapping(
                p.parameters.as_deref(),
                p.parameters_file.as_deref(),
                "-p/--parameters",
            )
        };
        match self {
            SimulatorAction::Start(start) => {
                if let Some(p) = parameters(&start.parameters)? {
                    body.insert("parameters".into(), Value::Object(p));
                }
                let model = mapping(
                    start.model.as_deref(),
                    start.model_file.as_deref(),
                    "-m/--model",
                )?;
                if let Some(model) = model {
                    body.insert("model".into(), Value::Object(model));
                }
                let results = mapping(
                    start.results.as_deref(),
                    start.results_file.as_deref(),
                    "-r/--results",
                )?;
                if let Some(results) = results {
                    body.insert("results".into(), Value::Object(results));
                }
                if let Some(when) = start.when {
                    body.insert("when".into(), json!(when));
                }
            }
            SimulatorAction::Create(p) | SimulatorAction::Delete(p) => {
                // The reference always sends parameters with these two.
                let p = parameters(p)?.unwrap_or_default();
                body.insert("parameters".into(), Value::Object(p));
            }
            _ => {}
        }
        Ok(body)
    }
}

/// Runs `simulator`.
pub async fn run(args: SimulatorArgs, target: &Target) -> Result<(), ClientError> {
    let kind = args.action.kind();
    let mut body = args.action.body()?;
    if kind == ActionKind::Ping {
        let session = Session::open(target).await?;
        let result = ping(&session, &args).await;
        session.close().await;
        return result;
    }
    let headers = args.filter.headers();
    if headers.is_empty() {
        return Err(ClientError::Usage(format!(
            "{} addresses nobody: give -r REALM, -c CATEGORY, -t TYPE or -u UUID \
             (an empty value, e.g. -u '', addresses every IC)",
            kind.as_str()
        )));
    }
    let watch_uuid = match (kind, args.wait) {
        (ActionKind::Create | ActionKind::Delete, Some(_)) => {
            Some(component_uuid(kind, &mut body)?)
        }
        _ => None,
    };
    let session = Session::open(target).await?;
    let result = match args.wait {
        None => session.publish(&headers, &Value::Object(body)).await,
        Some(state) => {
            let deadline = Instant::now() + secs(args.timeout.unwrap_or(WAIT_TIMEOUT));
            let waited = Wait {
                session: &session,
                headers: &headers,
                state,
                deadline,
                timeout: args.timeout.unwrap_or(WAIT_TIMEOUT),
            };
            waited
                .run(&args.filter, kind, Value::Object(body), watch_uuid)
                .await
        }
    };
    session.close().await;
    result
}

/// The uuid a `create`/`delete` is about: `parameters.uuid`, generated for
/// a `create` without one.
fn component_uuid(kind: ActionKind, body: &mut Map<String, Value>) -> Result<String, ClientError> {
    let parameters = body
        .entry("parameters")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(parameters) = parameters.as_object_mut() else {
        return Err(ClientError::BadInput("parameters must be a mapping".into()));
    };
    match parameters.get("uuid").and_then(Value::as_str) {
        Some(uuid) => Ok(uuid.to_owned()),
        None if kind == ActionKind::Create => {
            let uuid = uuid::Uuid::new_v4().hyphenated().to_string();
            parameters.insert("uuid".into(), uuid.clone().into());
            Ok(uuid)
        }
        None => Err(ClientError::BadInput(
            "delete --wait needs the uuid to delete: -p '{uuid: ...}'".into(),
        )),
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

/// `simulator ping`: the filter's pings ([`Filter::pings`]), then the
/// replies of the addressed ICs as they arrive (JSON lines, one per IC) or
/// as a table at the end. With only `-u`, ends as soon as that IC
/// answered.
async fn ping(session: &Session, args: &SimulatorArgs) -> Result<(), ClientError> {
    let window = args.timeout.unwrap_or(PING_WINDOW);
    let table = collect_replies(session, &args.filter, window, !args.table).await?;
    if table.is_empty() {
        let pings: Vec<String> = args.filter.pings().iter().map(describe_headers).collect();
        return Err(ClientError::Failed(format!(
            "no IC answered the ping ({}) within {window} s",
            pings.join("; ")
        )));
    }
    if args.table {
        print_line(table.render().trim_end())?;
    }
    Ok(())
}

/// Sends the pings that find the ICs `filter` addresses
/// ([`Filter::pings`]) and collects the replies for `window` seconds (or
/// until the one uuid answered), merged by uuid: an IC that answers
/// several of the pings is one row, printed (as a JSON line, when `print`)
/// once.
pub async fn collect_replies(
    session: &Session,
    filter: &Filter,
    window: f64,
    print: bool,
) -> Result<IcTable, ClientError> {
    let pings = filter.pings();
    let mut rx = session.subscribe(&Headers::default()).await?;
    for headers in &pings {
        session
            .publish(headers, &json!({"action": ActionKind::Ping.as_str()}))
            .await?;
    }
    let deadline = Instant::now() + secs(window);
    let mut table = IcTable::default();
    while let Some(received) = next_until(&mut rx, deadline).await? {
        let Some(status) = pings
            .iter()
            .find_map(|headers| addressed_status(&received, headers))
        else {
            continue;
        };
        let Some(uuid) = status.uuid() else { continue };
        if print && !table.contains(uuid) {
            print_line(&received.payload().to_string())?;
        }
        table.update(&status);
        if filter.only_uuid() == Some(uuid) {
            break;
        }
    }
    Ok(table)
}

/// The status in `received` if it comes from an IC that `headers`
/// address (x-match any; an empty value addresses everyone).
fn addressed_status(received: &Received, headers: &Headers) -> Option<StatusView> {
    let status = received.status()?;
    identity_of(&status)?.matches(headers).then_some(status)
}

fn describe_headers(headers: &Headers) -> String {
    let pairs: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    pairs.join(" ")
}

/// One `--wait` run.
struct Wait<'a> {
    /// The session.
    session: &'a Session,
    /// The action's headers.
    headers: &'a Headers,
    /// The state to reach.
    state: State,
    /// When to give up.
    deadline: Instant,
    /// The time allowed, for the message.
    timeout: f64,
}

impl Wait<'_> {
    async fn run(
        &self,
        filter: &Filter,
        kind: ActionKind,
        body: Value,
        watch_uuid: Option<String>,
    ) -> Result<(), ClientError> {
        let mut rx = self.session.subscribe(&Headers::default()).await?;
        let watched: BTreeMap<String, String> = match watch_uuid {
            Some(uuid) => {
                let name = body["parameters"]["name"].as_str().unwrap_or("").to_owned();
                BTreeMap::from([(uuid, name)])
            }
            None => self.discover(&mut rx, filter).await?,
        };
        if watched.is_empty() {
            return Err(ClientError::Failed(format!(
                "no IC answered a ping with {}; nothing to wait for",
                describe_headers(self.headers)
            )));
        }
        let mut waiter = Waiter::new(self.state, kind.as_str(), self.headers.clone(), watched);
        // The last status body of every IC, printed for the watched ones.
        let mut last: BTreeMap<String, Value> = BTreeMap::new();
        self.session.publish(self.headers, &body).await?;
        loop {
            match waiter.verdict() {
                Verdict::Pending => {}
                Verdict::Reached => {
                    print_statuses(&waiter, &last)?;
                    return Ok(());
                }
                Verdict::Failed(message) => {
                    print_statuses(&waiter, &last)?;
                    return Err(ClientError::Failed(message));
                }
            }
            let Some(received) = next_until(&mut rx, self.deadline).await? else {
                return Err(ClientError::Timeout {
                    seconds: self.timeout,
                    detail: waiter.pending(),
                });
            };
            let Some(status) = received.status() else {
                continue;
            };
            if let Some(uuid) = status.uuid() {
                last.insert(uuid.to_owned(), received.payload());
            }
            match waiter.observe(&status) {
                Some(Progress::State { uuid, name, state }) => {
                    eprintln!("villas-controller: {uuid} ({name}): {state}");
                }
                Some(Progress::Dropped { uuid, message }) => {
                    eprintln!("villas-controller: {uuid} not waited for: {message}");
                }
                None => {}
            }
        }
    }

    /// The ICs the headers address: those answering a ping with them.
    async fn discover(
        &self,
        rx: &mut mpsc::UnboundedReceiver<Received>,
        filter: &Filter,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        self.session
            .publish(self.headers, &json!({"action": ActionKind::Ping.as_str()}))
            .await?;
        let window = (Instant::now() + DISCOVERY_WINDOW).min(self.deadline);
        let until = if filter.only_uuid().is_some() {
            self.deadline
        } else {
            window
        };
        let mut found = BTreeMap::new();
        while let Some(received) = next_until(rx, until).await? {
            let Some(status) = addressed_status(&received, self.headers) else {
                continue;
            };
            let Some(uuid) = status.uuid() else { continue };
            let name = status
                .properties
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("");
            found.insert(uuid.to_owned(), name.to_owned());
            if filter.only_uuid() == Some(uuid) {
                break;
            }
        }
        Ok(found)
    }
}

/// The last status of every watched IC, one JSON line each.
fn print_statuses(waiter: &Waiter, last: &BTreeMap<String, Value>) -> Result<(), ClientError> {
    for uuid in waiter.uuids() {
        if let Some(body) = last.get(uuid) {
            print_line(&body.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_absolute_or_relative() {
        assert_eq!(parse_when("1700000000.5"), Ok(1_700_000_000.5));
        let relative = parse_when("+10").unwrap();
        assert!((relative - unix_now() - 10.0).abs() < 1.0);
        assert!(parse_when("tomorrow").is_err());
    }

    #[test]
    fn start_body_carries_everything() {
        let action = SimulatorAction::Start(StartArgs {
            parameters: ParameterArgs {
                parameters: Some("runtime: 5".into()),
                parameters_file: None,
            },
            model: Some("{url: 'http://m'}".into()),
            results: Some("url: http://r".into()),
            when: Some(5.0),
            ..StartArgs::default()
        });
        let body = Value::Object(action.body().unwrap());
        assert_eq!(
            body,
            json!({"action": "start", "parameters": {"runtime": 5},
                   "model": {"url": "http://m"}, "results": {"url": "http://r"}, "when": 5.0})
        );
        assert_eq!(
            Value::Object(SimulatorAction::Stop.body().unwrap()),
            json!({"action": "stop"})
        );
    }

    #[test]
    fn flags_resolve_as_in_the_reference() {
        use crate::cli::{Cli, Command};
        use crate::client::ClientCommand;
        use clap::Parser;
        // -c before the subcommand: the file; after `simulator`: the
        // category; -r after `start`: the results, before it: the realm.
        let cli = Cli::try_parse_from([
            "villas-controller",
            "-c",
            "lab.yaml",
            "simulator",
            "-c",
            "simulator",
            "-r",
            "lab",
            "start",
            "-r",
            "{url: x}",
            "--wait",
            "running",
        ])
        .unwrap();
        assert_eq!(cli.config_file(), Some(std::path::Path::new("lab.yaml")));
        let Command::Client(command) = cli.command else {
            panic!("not a client command")
        };
        let ClientCommand::Simulator(args) = *command else {
            panic!("not simulator")
        };
        assert_eq!(args.filter.category.as_deref(), Some("simulator"));
        assert_eq!(args.filter.realm.as_deref(), Some("lab"));
        assert_eq!(args.wait, Some(State::Running));
        let SimulatorAction::Start(start) = args.action else {
            panic!("not start")
        };
        assert_eq!(start.results.as_deref(), Some("{url: x}"));
        let cli = Cli::try_parse_from(["villas-controller", "daemon", "-c", "d.yaml"]).unwrap();
        assert_eq!(cli.config_file(), Some(std::path::Path::new("d.yaml")));
        assert!(Cli::try_parse_from(["villas-controller", "simulator", "fly"]).is_err());
    }

    #[test]
    fn create_gets_a_uuid_to_follow() {
        let mut body = SimulatorAction::Create(ParameterArgs::default())
            .body()
            .unwrap();
        let uuid = component_uuid(ActionKind::Create, &mut body).unwrap();
        assert_eq!(body["parameters"]["uuid"], uuid.as_str());
        let mut body = SimulatorAction::Delete(ParameterArgs::default())
            .body()
            .unwrap();
        assert!(component_uuid(ActionKind::Delete, &mut body).is_err());
    }
}
