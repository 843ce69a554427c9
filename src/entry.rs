//! The program behind the `villas-controller` binary: parses the command
//! line, sets up logging, loads the settings and runs the daemon, checks
//! the configuration or runs a client command (`crate::client`, which
//! loads the broker section of the configuration only). A lab
//! that adds its own kinds calls [`main_with_kinds`] from its own `main`.

use crate::bus::BusSettings;
use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::settings::{self, redact_url};
use crate::{daemon, telemetry};
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use villas_actors::kinds::KindRegistry;
use villas_sdk::Kind;

/// Runs the `villas-controller` command line with `kinds` (the built-in
/// ones from [`crate::builtin_kinds()`], a lab's own, or both): what
/// a lab's own binary calls from its `main` so it gets the CLI, the
/// configuration checks, the exit codes and the signal handling unchanged.
pub fn main_with_kinds(kinds: Vec<Arc<dyn Kind>>) -> ExitCode {
    let cli = Cli::parse();
    let level = match &cli.command {
        Command::Client(_) => crate::client::log_filter(&cli.level),
        _ => cli.level.clone(),
    };
    telemetry::init(&level, cli.log_format);
    let file = settings::find_config_file(cli.config_file());
    let invalid_configuration = |error: settings::SettingsError| {
        tracing::error!(%error, "invalid configuration");
        eprintln!("villas-controller: invalid configuration: {error}");
        ExitCode::from(Exit::Config)
    };
    let run_daemon = match cli.command {
        // A client reads the broker section only: the daemon's sections
        // (token file, state directory, components) may be unusable by the
        // user running it.
        Command::Client(command) => {
            return match settings::load_broker(file.as_deref(), cli.broker.as_deref()) {
                Ok(broker) => crate::client::main(*command, broker.as_ref()),
                Err(error) => invalid_configuration(error),
            }
        }
        Command::Kind(command) => {
            return match settings::state_dir(file.as_deref()) {
                Ok(dir) => crate::kind_admin::main(command, &dir, &kinds),
                Err(error) => invalid_configuration(error),
            }
        }
        Command::CheckConfig(_) => false,
        Command::Daemon(_) => true,
    };
    let mut kinds = kinds;
    let mut process_names = Vec::new();
    match settings::kind_processes(file.as_deref()) {
        Ok(processes) => {
            for process in processes {
                let name = process.name.clone();
                process_names.push(name.clone());
                match villas_actors::process::start(process, env!("CARGO_PKG_VERSION")) {
                    Ok(served) => {
                        for kind in &served {
                            let replaces = kinds.iter().any(|k| {
                                k.category() == kind.category() && k.type_name() == kind.type_name()
                            });
                            tracing::info!(
                                kind_process = %name,
                                kind = %format!("{}/{}", kind.category(), kind.type_name()),
                                replaces_built_in = replaces,
                                "kind served by a kind process"
                            );
                        }
                        kinds.extend(served);
                    }
                    Err(error) => {
                        tracing::error!(kind_process = %name, %error, "kind process not started");
                        eprintln!("villas-controller: kind process {name}: {error}");
                        return ExitCode::from(Exit::Config);
                    }
                }
            }
        }
        Err(error) => return invalid_configuration(error),
    }
    let kinds = match KindRegistry::new(kinds) {
        Ok(kinds) => kinds,
        Err(error) => {
            tracing::error!(%error, "a built-in kind has an invalid schema");
            return ExitCode::from(Exit::Failure);
        }
    };
    for name in &process_names {
        kinds.mark_process(name);
    }
    let settings = match settings::load(file.as_deref(), cli.broker.as_deref(), &kinds) {
        Ok(settings) => settings,
        Err(error) => return invalid_configuration(error),
    };
    if !run_daemon {
        let bus = match &settings.bus {
            BusSettings::Local => "in-process".to_owned(),
            BusSettings::Amqp(amqp) => amqp
                .urls
                .iter()
                .map(|url| redact_url(url))
                .collect::<Vec<_>>()
                .join(", "),
        };
        println!(
            "configuration OK: {} (uuid {}, broker {bus}, {} manager(s), {} component(s))",
            file.as_deref()
                .map_or_else(|| "<defaults>".into(), |f| f.display().to_string()),
            settings.uuid,
            settings.placement.manager_count(),
            settings.placement.component_count(),
        );
        return ExitCode::from(Exit::Success);
    }
    let system = actix::System::new();
    let result = system.block_on(daemon::run(settings, kinds, shutdown_signal()));
    match result {
        Ok(()) => ExitCode::from(Exit::Success),
        Err(error) => {
            let exit = error.exit();
            tracing::error!(error = %anyhow::Error::from(error), "daemon failed");
            ExitCode::from(exit)
        }
    }
}

/// Completes on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    let Some(mut signals) = crate::signals::stopped().await else {
        return;
    };
    actix::spawn(async move {
        signals.next().await;
        eprintln!("villas-controller: second signal: exiting now");
        Exit::Interrupted.now();
    });
}
