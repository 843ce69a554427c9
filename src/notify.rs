//! systemd's readiness protocol (`sd_notify`), for `Type=notify` units: a
//! datagram such as `READY=1` sent to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Without
//! the variable (not started by systemd) every call is a no-op. The daemon
//! sends `READY=1` once the bus topology is declared and the HTTP port is
//! bound, and `STOPPING=1` when the ordered stop begins.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to systemd.
/// Returns whether it was sent; failures are logged, never fatal.
pub fn notify(state: &str) -> bool {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let socket = socket.to_string_lossy().into_owned();
    match send(&socket, state) {
        Ok(()) => {
            tracing::debug!(%state, "told the service manager");
            true
        }
        Err(error) => {
            tracing::warn!(%error, %socket, "cannot notify the service manager");
            false
        }
    }
}

fn send(socket: &str, state: &str) -> std::io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    match socket.strip_prefix('@') {
        Some(name) => send_abstract(&sender, name, state),
        None => sender.send_to(state.as_bytes(), socket).map(|_| ()),
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(sender: &UnixDatagram, name: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    sender.send_to_addr(state.as_bytes(), &address).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &str, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

/// Tells systemd the daemon is ready, with a status line.
pub fn ready(status: &str) -> bool {
    notify(&format!("READY=1\nSTATUS={status}"))
}

/// Sends `READY=1` once `linked` is true (the transport has its link: the
/// AMQP bus declared its exchange, queue and binding; the in-process bus
/// at once). Runs on the current actix arbiter; gives up silently if the
/// transport goes away first.
pub fn ready_when_linked(mut linked: tokio::sync::watch::Receiver<bool>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    actix::spawn(async move {
        if !*linked.borrow_and_update() {
            status("connecting to the broker");
            if linked.wait_for(|linked| *linked).await.is_err() {
                return;
            }
        }
        ready("running");
    });
}

/// Tells systemd the daemon is stopping.
pub fn stopping() -> bool {
    notify("STOPPING=1\nSTATUS=stopping")
}

/// Updates the status line `systemctl status` shows.
pub fn status(status: &str) -> bool {
    notify(&format!("STATUS={status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buffer = [0u8; 64];
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"READY=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn datagrams_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("villas-notify-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        send(&format!("@{name}"), "STOPPING=1").unwrap();
        let mut buffer = [0u8; 64];
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"STOPPING=1");
    }
}
