//! The command line, compatible with the reference's
//! `villas-controller [-b URL] [-c FILE] [-d LEVEL] daemon|monitor|simulator`
//! (the client commands' arguments live in `crate::client`).

use crate::telemetry::LogFormat;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Orchestrates the infrastructure components of distributed real-time
/// simulation labs over the VILLAScontroller protocol.
#[derive(Debug, Parser)]
#[command(name = "villas-controller", version, about)]
pub(crate) struct Cli {
    /// AMQP broker URI, or the URIs of several broker nodes separated by
    /// commas (overrides broker.url); without one the daemon runs on its
    /// in-process bus.
    #[arg(short = 'b', long = "broker", global = true)]
    pub(crate) broker: Option<String>,

    /// Configuration file (TOML, YAML or JSON); default: searched in the
    /// XDG config dirs, ./, ./etc and /etc/villas/controller. Given before
    /// the subcommand, as the reference's `villas-controller -c FILE
    /// daemon` (after `monitor`/`simulator`, `-c` is the category filter).
    #[arg(short = 'c', long = "config")]
    pub(crate) config: Option<PathBuf>,

    /// Log level or filter (RUST_LOG takes precedence).
    #[arg(short = 'd', long = "debug", default_value = "info", global = true)]
    pub(crate) level: String,

    /// Log line format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub(crate) log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the controller daemon.
    Daemon(ConfigArg),
    /// Validate the configuration and exit (78 if it is invalid).
    CheckConfig(ConfigArg),
    /// Install, list and remove kinds (in the state directory's kinds/).
    #[command(subcommand)]
    Kind(crate::kind_admin::KindCommand),
    /// The client commands.
    #[command(flatten)]
    Client(Box<crate::client::ClientCommand>),
}

/// `-c FILE` after `daemon`/`check-config` too (as before the client
/// commands took `-c` for the category).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ConfigArg {
    /// Configuration file (overrides one given before the subcommand).
    #[arg(short = 'c', long = "config")]
    pub(crate) config: Option<PathBuf>,
}

impl Cli {
    /// The configuration file given on the command line, if any.
    pub(crate) fn config_file(&self) -> Option<&std::path::Path> {
        match &self.command {
            Command::Daemon(arg) | Command::CheckConfig(arg) => arg.config.as_deref(),
            Command::Client(_) | Command::Kind(_) => None,
        }
        .or(self.config.as_deref())
    }
}
