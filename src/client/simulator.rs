//! `villas-controller simulator [-r] [-c] [-t] [-u] ACTION ...`: sends one
//! action with the reference's flags, plus `--wait STATE [--timeout S]` to
//! follow the addressed ICs until they reach a state (for scripts), and
//! `ping` printing the replies (JSON lines as the reference, or `--table`).
//!
//! With `--wait`, the addressed ICs are first found by a ping with the
//! same headers (for `create`/`delete`: the uuid in the parameters; a
//! `create` without one gets a fresh v4 uuid so it can be followed).

use super::discover::collect_replies;
use super::params::mapping;
use super::{parse_seconds, print_line, ClientError, FilterArgs};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use villas_client::filter::describe_headers;
use villas_client::{component_uuid, Filter, Follow, Progress, Session, Step, Target};
use villas_sdk::protocol::unix_now;
use villas_sdk::{Action, ActionKind, State};

/// How long `ping` collects replies by default.
const PING_WINDOW: f64 = 2.0;
/// How long `--wait` waits by default.
const WAIT_TIMEOUT: f64 = 60.0;

/// `simulator` arguments.
#[derive(Debug, clap::Args)]
pub struct SimulatorArgs {
    /// Which ICs the action addresses (any header matches).
    #[command(flatten)]
    pub filter: FilterArgs,
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

    /// The action, built (and its inputs checked) before connecting.
    pub fn action(&self) -> Result<Action, ClientError> {
        let mut action = Action::new(self.kind());
        let parameters = |p: &ParameterArgs| {
            mapping(
                p.parameters.as_deref(),
                p.parameters_file.as_deref(),
                "-p/--parameters",
            )
        };
        match self {
            SimulatorAction::Start(start) => {
                action.parameters = parameters(&start.parameters)?.unwrap_or_default();
                action.model = mapping(
                    start.model.as_deref(),
                    start.model_file.as_deref(),
                    "-m/--model",
                )?
                .map(Value::Object);
                action.results = mapping(
                    start.results.as_deref(),
                    start.results_file.as_deref(),
                    "-r/--results",
                )?
                .map(Value::Object);
                action.when = start.when;
            }
            SimulatorAction::Create(p) | SimulatorAction::Delete(p) => {
                action.parameters = parameters(p)?.unwrap_or_default();
            }
            _ => {}
        }
        Ok(action)
    }
}

/// Runs `simulator`.
pub async fn run(args: SimulatorArgs, target: &Target) -> Result<(), ClientError> {
    let mut action = args.action.action()?;
    if action.kind == ActionKind::Ping {
        let session = Session::open(target).await?;
        let result = ping(&session, &args).await;
        session.close().await;
        return result;
    }
    let filter = args.filter.filter();
    if filter.headers().is_empty() {
        return Err(ClientError::Usage(format!(
            "{} addresses nobody: give -r REALM, -c CATEGORY, -t TYPE or -u UUID \
             (an empty value, e.g. -u '', addresses every IC)",
            action.kind.as_str()
        )));
    }
    if args.wait.is_some() {
        // A `create` gets a uuid to follow; a `delete` must name one.
        component_uuid(&mut action).map_err(|_| {
            ClientError::BadInput("delete --wait needs the uuid to delete: -p '{uuid: ...}'".into())
        })?;
    }
    let session = Session::open(target).await?;
    let result = match args.wait {
        None => session
            .send(filter.headers(), &action)
            .await
            .map_err(ClientError::from),
        Some(state) => {
            let timeout = args.timeout.unwrap_or(WAIT_TIMEOUT);
            wait(&session, &filter, &action, state, timeout).await
        }
    };
    session.close().await;
    result
}

/// `simulator ping`: the filter's pings (`Filter::pings`), then the
/// replies of the addressed ICs as they arrive (JSON lines, one per IC) or
/// as a table at the end. With only `-u`, ends as soon as that IC
/// answered.
async fn ping(session: &Session, args: &SimulatorArgs) -> Result<(), ClientError> {
    let window = args.timeout.unwrap_or(PING_WINDOW);
    let filter = args.filter.filter();
    let table = collect_replies(session, &filter, window, !args.table).await?;
    if table.is_empty() {
        let pings: Vec<String> = filter.pings().iter().map(describe_headers).collect();
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

/// `--wait STATE`: sends the action and follows the addressed ICs
/// ([`Follow`]), telling each state change on standard error; at the end
/// (reached or failed), the last status of every IC waited for as a JSON
/// line.
async fn wait(
    session: &Session,
    filter: &Filter,
    action: &Action,
    state: State,
    timeout: f64,
) -> Result<(), ClientError> {
    let timeout = Duration::from_secs_f64(timeout);
    let mut follow = Follow::start(session, filter, action, state, timeout).await?;
    loop {
        let failure = match follow.step().await {
            Ok(Step::Progress(Progress::State { uuid, name, state })) => {
                eprintln!("villas-controller: {uuid} ({name}): {state}");
                continue;
            }
            Ok(Step::Progress(Progress::Dropped { uuid, message })) => {
                eprintln!("villas-controller: {uuid} not waited for: {message}");
                continue;
            }
            Ok(Step::Reached) => None,
            Err(error @ villas_client::Error::Failed(_)) => Some(error),
            Err(error) => return Err(error.into()),
        };
        for status in follow.last_statuses() {
            print_line(&status.payload().to_string())?;
        }
        return failure.map_or(Ok(()), |error| Err(error.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let body = action.action().unwrap().to_json();
        assert_eq!(
            body,
            json!({"action": "start", "parameters": {"runtime": 5},
                   "model": {"url": "http://m"}, "results": {"url": "http://r"}, "when": 5.0})
        );
        assert_eq!(
            SimulatorAction::Stop.action().unwrap().to_json(),
            json!({"action": "stop", "parameters": {}})
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
}
