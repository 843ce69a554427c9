//! SIGHUP: the daemon picks up kinds installed in the state directory
//! (`kind install`) since it started, without a restart: each new one is
//! started as a kind process and its kinds are registered, so that
//! managers can `create` components of them. Kinds already running are
//! left alone (a changed or removed kind takes effect at the next start).

use crate::settings::installed::installed_kinds;
use std::path::{Path, PathBuf};
use tokio::signal::unix::{signal, SignalKind};
use villas_actors::kinds::KindRegistry;

/// Reloads at every SIGHUP, until the daemon stops.
pub(crate) async fn on_hangup(kinds: KindRegistry, state_dir: PathBuf) {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler: installed kinds are picked up at the next start");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: looking for newly installed kinds");
        let (kinds, dir) = (kinds.clone(), state_dir.clone());
        // Starting a kind process blocks until its handshake.
        if tokio::task::spawn_blocking(move || reload(&kinds, &dir))
            .await
            .is_err()
        {
            tracing::error!("the reload panicked");
        }
    }
}

fn reload(kinds: &KindRegistry, state_dir: &Path) {
    let specs = match installed_kinds(state_dir) {
        Ok(specs) => specs,
        Err(error) => {
            tracing::error!(%error, "reload: an installed kind is unusable");
            return;
        }
    };
    for spec in specs {
        let name = spec.name.clone();
        if !kinds.mark_process(&name) {
            continue;
        }
        match villas_actors::process::start(spec, env!("CARGO_PKG_VERSION")) {
            Ok(served) => {
                for kind in served {
                    let label = format!("{}/{}", kind.category(), kind.type_name());
                    match kinds.register(kind) {
                        Ok(()) => {
                            tracing::info!(kind_process = %name, kind = %label, "kind served by a kind process")
                        }
                        Err(error) => {
                            tracing::error!(kind_process = %name, kind = %label, %error, "kind not registered: invalid schema")
                        }
                    }
                }
            }
            Err(error) => tracing::error!(kind_process = %name, %error, "kind process not started"),
        }
    }
}
