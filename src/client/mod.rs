//! The client CLI in the daemon's binary, compatible with the reference's
//! `villas-controller [-b URL] [-c FILE] monitor|simulator ...`, plus
//! `discover`: one module per command, on a short-lived broker
//! [`session::Session`]. The broker (URL, exchange, TLS files) comes from
//! `-b` and the broker section of the same configuration file the daemon
//! reads (its other sections are not read); without either, the
//! reference's default `amqp://guest:guest@localhost/%2F`.
//!
//! Exit codes: 0 done; 1 an addressed IC ended in `error`, refused the
//! action, or nobody answered; 2 a usage error (from clap); 64 a command
//! that addresses nobody; 65 unusable `-p`/`-P`/`-m`/`-r` input; 69 the
//! broker cannot be reached or the connection was lost; 124 `--wait` timed
//! out.

pub mod discover;
pub mod monitor;
pub mod params;
pub mod session;
pub mod simulator;
pub mod table;
pub mod wait;

use crate::bus::connect::TlsFiles;
use crate::settings::BrokerEndpoint;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;
use villas_sdk::protocol::StatusView;
use villas_sdk::{Headers, Identity};

/// The categories of the reference's components, pinged one by one when
/// a command addresses every IC.
pub const CATEGORIES: [&str; 3] = ["simulator", "manager", "gateway"];

/// The reference's broker when none is configured.
pub const DEFAULT_BROKER_URL: &str = "amqp://guest:guest@localhost/%2F";

/// The client subcommands, flattened into the top-level command line.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Print every matching message as a JSON line (as the reference), or
    /// with --table a live table of the ICs and their states.
    Monitor(monitor::MonitorArgs),
    /// Send an action to the ICs the filter addresses (x-match any).
    Simulator(simulator::SimulatorArgs),
    /// Ping every IC once and print a table of those that answer.
    Discover(discover::DiscoverArgs),
}

/// Where the client connects.
#[derive(Debug, Clone)]
pub struct Target {
    /// Broker URI (password included: never print it unredacted).
    pub url: String,
    /// The headers exchange.
    pub exchange: String,
    /// TLS files for an `amqps://` URL.
    pub tls: Option<TlsFiles>,
}

impl Target {
    /// The configured broker, or the reference's default one.
    pub fn from_broker(broker: Option<&BrokerEndpoint>) -> Self {
        match broker {
            Some(broker) => Target {
                url: broker.url.clone(),
                exchange: broker.exchange.clone(),
                tls: broker.tls.clone(),
            },
            None => Target {
                url: DEFAULT_BROKER_URL.into(),
                exchange: "villas".into(),
                tls: None,
            },
        }
    }
}

/// The reference's filter flags: which ICs a command addresses (or, for
/// `monitor`, which messages it shows).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filter {
    /// Realm header.
    #[arg(short = 'r', long)]
    pub realm: Option<String>,
    /// Category header (simulator, manager, gateway, ...).
    #[arg(short = 'c', long)]
    pub category: Option<String>,
    /// Type header (dummy, generic, ...).
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Uuid header.
    #[arg(short = 'u', long)]
    pub uuid: Option<String>,
}

impl Filter {
    /// The headers the flags set (the reference's `get_headers`).
    pub fn headers(&self) -> Headers {
        Headers {
            realm: self.realm.clone(),
            category: self.category.clone(),
            kind: self.kind.clone(),
            uuid: self.uuid.clone(),
        }
    }

    /// The headers of the pings that find the ICs the filter addresses:
    /// the filter's own headers when it sets any (the reference answers
    /// those too: its components bind `x-match: any` on their headers);
    /// without a filter, `uuid: ""` (every IC of ours, as VILLASweb
    /// pings) plus one ping per category, which the reference answers
    /// (it ignores the empty uuid: its bindings match no empty value).
    pub fn pings(&self) -> Vec<Headers> {
        let headers = self.headers();
        if !headers.is_empty() {
            return vec![headers];
        }
        let mut pings = vec![Headers::uuid("")];
        pings.extend(CATEGORIES.iter().map(|category| Headers {
            category: Some((*category).to_owned()),
            ..Headers::default()
        }));
        pings
    }

    /// The uuid when it is the only filter: a command can stop as soon as
    /// that one IC answered.
    pub fn only_uuid(&self) -> Option<&str> {
        match self {
            Filter {
                realm: None,
                category: None,
                kind: None,
                uuid: Some(uuid),
            } if !uuid.is_empty() => Some(uuid),
            _ => None,
        }
    }
}

/// Why a client command failed; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An addressed IC ended in `error`, refused the action, or nobody
    /// answered.
    #[error("{0}")]
    Failed(String),
    /// The command addresses nobody.
    #[error("{0}")]
    Usage(String),
    /// Unusable input (`-p`, `-P`, `-m`, `-r`, `-w`).
    #[error("{0}")]
    BadInput(String),
    /// The broker cannot be reached, refused us, or the connection broke.
    #[error("{0}")]
    Broker(String),
    /// `--wait` ran out of time.
    #[error("timed out after {seconds} s: {detail}")]
    Timeout {
        /// The time allowed.
        seconds: f64,
        /// Who had not arrived, and where they were.
        detail: String,
    },
    /// Standard output was closed (`... | head`): stop quietly.
    #[error("standard output closed")]
    StdoutClosed,
}

impl ClientError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        use crate::exit::Exit;
        match self {
            ClientError::Failed(_) => Exit::Failure,
            ClientError::Usage(_) => Exit::Usage,
            ClientError::BadInput(_) => Exit::BadInput,
            ClientError::Broker(_) => Exit::Unavailable,
            ClientError::Timeout { .. } => Exit::TimedOut,
            ClientError::StdoutClosed => Exit::Success,
        }
        .code()
    }
}

/// Runs a client command to completion on `broker` (the configuration's
/// broker section, see `crate::settings::load_broker`); the process's exit
/// code.
pub fn main(command: ClientCommand, broker: Option<&BrokerEndpoint>) -> ExitCode {
    let target = Target::from_broker(broker);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("villas-controller: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            ClientCommand::Monitor(args) => monitor::run(args, &target).await,
            ClientCommand::Simulator(args) => simulator::run(args, &target).await,
            ClientCommand::Discover(args) => discover::run(args, &target).await,
        }
    });
    match result {
        Ok(()) | Err(ClientError::StdoutClosed) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("villas-controller: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// The log filter of a client command: `level`, with lapin's own error
/// lines silenced (the command reports the same failure in one line).
pub fn log_filter(level: &str) -> String {
    format!("{level},lapin=off")
}

/// Writes one line to standard output and flushes it (a pipe reader sees
/// each message at once). A closed pipe ends the command quietly.
pub fn print_line(line: &str) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|_| ClientError::StdoutClosed)
}

/// The addressable identity in a status's properties.
pub fn identity_of(status: &StatusView) -> Option<Identity> {
    let text = |key: &str| {
        status
            .properties
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Some(Identity {
        realm: text("realm"),
        category: text("category")?,
        kind: text("type")?,
        uuid: text("uuid")?,
    })
}

/// Parses `--timeout`/`--wait` style seconds: finite and positive.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value < 1e7 => Ok(value),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_without_filter_addresses_everyone_and_each_category() {
        let category = |c: &str| Headers {
            category: Some(c.into()),
            ..Headers::default()
        };
        assert_eq!(
            Filter::default().pings(),
            [
                Headers::uuid(""),
                category("simulator"),
                category("manager"),
                category("gateway")
            ]
        );
        let filter = Filter {
            realm: Some("lab".into()),
            ..Filter::default()
        };
        assert_eq!(filter.pings(), [filter.headers()]);
        assert_eq!(filter.only_uuid(), None);
        let filter = Filter {
            uuid: Some("x".into()),
            ..Filter::default()
        };
        assert_eq!(filter.only_uuid(), Some("x"));
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(parse_seconds("1.5"), Ok(1.5));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-3").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
