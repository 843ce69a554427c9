//! The client CLI in the daemon's binary, compatible with the reference's
//! `villas-controller [-b URL] [-c FILE] monitor|simulator ...`, plus
//! `discover`: one module per command, each a thin layer over the
//! protocol client [`villas_client`] (a short-lived [`villas_client::Session`]);
//! what is here is the command line and the presentation. The broker (URL, exchange, TLS files) comes from
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
pub mod simulator;
pub mod table;

use crate::settings::BrokerEndpoint;
use std::io::Write;
use std::process::ExitCode;
use villas_client::{Filter, Target, TlsFiles};
use villas_sdk::Headers;

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

/// Where the client connects: the configured broker, or the reference's
/// default one.
pub fn target_of(broker: Option<&BrokerEndpoint>) -> Target {
    let target = match broker {
        Some(broker) => {
            let target = Target::of_nodes(&broker.urls, broker.exchange.clone());
            match &broker.tls {
                Some(tls) => target.with_tls(TlsFiles {
                    ca_file: tls.ca_file.clone(),
                    cert_file: tls.cert_file.clone(),
                    key_file: tls.key_file.clone(),
                }),
                None => target,
            }
        }
        None => Target::new(DEFAULT_BROKER_URL, villas_client::session::DEFAULT_EXCHANGE),
    };
    target.with_name("villas-controller-cli")
}

/// The reference's filter flags: which ICs a command addresses (or, for
/// `monitor`, which messages it shows).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Realm header.
    #[arg(short = 'r', long)]
    pub realm: Option<String>,
    /// Category header (simulator, manager, gateway, ...).
    #[arg(short = 'c', long)]
    pub category: Option<String>,
    /// Type header (dummy, generic, ...).
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub type_name: Option<String>,
    /// Uuid header.
    #[arg(short = 'u', long)]
    pub uuid: Option<String>,
}

impl FilterArgs {
    /// The filter the flags set (the reference's `get_headers`).
    pub fn filter(&self) -> Filter {
        Filter::from(Headers {
            realm: self.realm.clone(),
            category: self.category.clone(),
            type_name: self.type_name.clone(),
            uuid: self.uuid.clone(),
        })
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

impl From<villas_client::Error> for ClientError {
    fn from(error: villas_client::Error) -> Self {
        use villas_client::Error;
        match error {
            Error::Timeout { seconds, detail } => ClientError::Timeout { seconds, detail },
            Error::Failed(message) => ClientError::Failed(message),
            Error::Input(message) => ClientError::BadInput(message),
            Error::Connect { .. }
            | Error::Subscribe(_)
            | Error::Operation { .. }
            | Error::Publish(_)
            | Error::Refused
            | Error::ConnectionLost => ClientError::Broker(error.to_string()),
        }
    }
}

/// Runs a client command to completion on `broker` (the configuration's
/// broker section, see `crate::settings::load_broker`); the process's exit
/// code.
pub fn main(command: ClientCommand, broker: Option<&BrokerEndpoint>) -> ExitCode {
    let target = target_of(broker);
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
    fn seconds_must_be_positive() {
        assert_eq!(parse_seconds("1.5"), Ok(1.5));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-3").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
