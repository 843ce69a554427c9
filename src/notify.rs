//! systemd's readiness protocol (`sd_notify`), for `Type=notify` units,
//! through the `sd-notify` crate: datagrams such as `READY=1` to the unix
//! socket `$NOTIFY_SOCKET` names. The crate speaks to a path only; an
//! abstract socket (`@name`, as container managers and some test set-ups
//! use) gets the same datagram through [`notify_abstract`]. Without the
//! variable (not started by systemd)
//! every call is a no-op. The daemon sends `READY=1` once the transport has
//! its link and the HTTP port is bound, and `STOPPING=1` when the ordered
//! stop begins.

use sd_notify::NotifyState;

/// Sends `states` to systemd in one datagram; failures are logged, never
/// fatal.
fn notify(states: &[NotifyState]) {
    let abstract_name = std::env::var("NOTIFY_SOCKET")
        .ok()
        .and_then(|socket| socket.strip_prefix('@').map(str::to_owned));
    let sent = match abstract_name {
        Some(name) => notify_abstract(&name, states),
        None => sd_notify::notify(states),
    };
    match sent {
        Ok(()) => tracing::debug!(?states, "told the service manager"),
        Err(error) => tracing::warn!(%error, "cannot notify the service manager"),
    }
}

/// Sends `states` to the abstract unix socket `name` (`$NOTIFY_SOCKET`
/// without its `@`), one `KEY=VALUE` line each, as `sd_notify(3)` does.
fn notify_abstract(name: &str, states: &[NotifyState]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let address = SocketAddr::from_abstract_name(name.as_bytes())?;
    let message: String = states.iter().map(|state| format!("{state}\n")).collect();
    UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &address)?;
    Ok(())
}

/// Sends `READY=1` once `linked` is true (the transport has its link: the
/// AMQP bus declared its exchange, queue and binding; the in-process bus
/// at once), and until then `STATUS=connecting to the broker`. Runs on the
/// current actix arbiter; gives up silently if the transport goes away
/// first.
pub(crate) fn ready_when_linked(mut linked: tokio::sync::watch::Receiver<bool>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    actix::spawn(async move {
        if !*linked.borrow_and_update() {
            notify(&[NotifyState::Status("connecting to the broker")]);
            if linked.wait_for(|linked| *linked).await.is_err() {
                return;
            }
        }
        notify(&[NotifyState::Ready, NotifyState::Status("running")]);
    });
}

/// Tells systemd the daemon is stopping.
pub(crate) fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
