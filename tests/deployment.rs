//! Black-box tests of what a deployment relies on: systemd readiness
//! (`READY=1` only once the bus topology is declared and the HTTP port is
//! bound, `STOPPING=1` on shutdown, through a unix datagram socket as
//! `$NOTIFY_SOCKET`), the broker password kept out of logs, metrics and
//! `check-config`, the `broker.tls` checks (exit 78), AMQP over real TLS
//! (a socat TLS terminator with client-certificate verification in front
//! of the local RabbitMQ), and the shipped example configuration.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A datagram socket standing in for systemd's notify socket.
struct NotifySocket {
    _dir: tempfile::TempDir,
    /// What `NOTIFY_SOCKET` says: a path, or `@name` for an abstract socket.
    path: PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            _dir: dir,
            path,
            socket,
        }
    }

    /// An abstract socket (`NOTIFY_SOCKET=@name`), as container managers use.
    fn new_abstract() -> NotifySocket {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("villas-test-notify-{}", new_uuid());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        NotifySocket {
            _dir: tempfile::tempdir().unwrap(),
            path: PathBuf::from(format!("@{name}")),
            socket,
        }
    }

    /// The next datagram (bounded wait), without its trailing newline.
    fn recv(&self) -> String {
        self.socket.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buffer = [0u8; 4096];
        let n = self.socket.recv(&mut buffer).expect("a notification");
        String::from_utf8_lossy(&buffer[..n]).trim_end().to_owned()
    }

    /// A datagram already queued, if any (never waits).
    fn try_recv(&self) -> Option<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut buffer = [0u8; 4096];
        let got = self.socket.recv(&mut buffer).ok();
        self.socket.set_nonblocking(false).unwrap();
        got.map(|n| String::from_utf8_lossy(&buffer[..n]).into_owned())
    }

    /// Datagrams until one containing `needle`; returns them all.
    fn until(&self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let message = self.recv();
            let done = message.lines().any(|l| l == needle);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

/// `common::config` with one dummy and the HTTP API on a free port.
fn config_with_api(exchange: &str, uuid: &str) -> String {
    config(exchange, uuid, &dummy(&new_uuid(), None, "D"))
        .replace("api:\n  enabled: false", "api:\n  port: 0")
}

fn check_config(text: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let mut command = Command::new(binary());
    command
        .arg("-c")
        .arg(&path)
        .arg("check-config")
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", dir.path());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Readiness reaches an abstract `NOTIFY_SOCKET` too (`@name`), which the
/// `sd-notify` crate alone does not speak to.
#[tokio::test]
async fn ready_reaches_an_abstract_notify_socket() {
    let notify = NotifySocket::new_abstract();
    let exchange = test_exchange();
    let uuid = new_uuid();
    let mut daemon = Daemon::start_with(
        &config_with_api(&exchange, &uuid),
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    let messages = notify.until("READY=1");
    assert!(
        messages.last().unwrap().contains("STATUS=running"),
        "{messages:?}"
    );
    daemon.signal("TERM");
    notify.until("STOPPING=1");
    assert_eq!(daemon.wait_exit(), Some(0));
}

#[tokio::test]
async fn ready_once_topology_and_http_are_up_then_stopping() {
    let notify = NotifySocket::new();
    let exchange = test_exchange();
    let uuid = new_uuid();
    let mut daemon = Daemon::start_with(
        &config_with_api(&exchange, &uuid),
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    let messages = notify.until("READY=1");
    assert!(
        messages.last().unwrap().contains("STATUS=running"),
        "{messages:?}"
    );

    // By READY=1 the HTTP port answers and the daemon's queue exists.
    let base = daemon.api_base();
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert!(health.status().is_success());
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            format!("villas-controller.{uuid}").as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the daemon's queue is declared before READY=1");
    let _ = connection.close(200, "bye".into()).await;

    daemon.signal("TERM");
    let messages = notify.until("STOPPING=1");
    assert!(
        !messages.iter().any(|m| m.contains("READY=1")),
        "{messages:?}"
    );
    assert_eq!(daemon.wait_exit(), Some(0));
}

/// A clean stop logs nothing at level ERROR (log alerting would fire on
/// every restart), and neither do the client commands' normal exits, even
/// with lapin's own log lines let through by `RUST_LOG`.
#[tokio::test]
async fn a_clean_stop_logs_no_error() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (uuid, sim) = (new_uuid(), new_uuid());
    let config = config(&exchange, &uuid, &dummy(&sim, None, "Sim"))
        .replace("api:\n  enabled: false", "api:\n  port: 0");
    let mut daemon = Daemon::start(&config);
    client.wait_state(&sim, "idle").await.unwrap();
    daemon.wait_log("bus connected");

    let config_file = daemon.dir.path().join("config.yaml");
    for args in [
        &["discover", "--timeout", "1"][..],
        &["simulator", "-u", &sim, "ping"][..],
    ] {
        let output = Command::new(binary())
            .arg("-c")
            .arg(&config_file)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            !stderr.contains(" ERROR "),
            "{args:?} logged an error:\n{stderr}"
        );
    }

    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    let errors: Vec<String> = daemon
        .whole_log()
        .into_iter()
        .filter(|line| line.contains(" ERROR "))
        .collect();
    assert!(errors.is_empty(), "a clean stop logged {errors:#?}");
    client.close_and_delete_exchange().await.unwrap();
}

#[tokio::test]
async fn no_ready_while_the_broker_is_unreachable() {
    let notify = NotifySocket::new();
    let yaml = config_with_api(&test_exchange(), &new_uuid())
        .replace(&amqp_url(), "amqp://guest:guest@127.0.0.1:1/%2F");
    let mut daemon = Daemon::start_with(&yaml, &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())]);
    // The readiness task says what it waits for, then waits: a READY=1
    // sent without waiting would follow this datagram at once.
    assert_eq!(notify.recv(), "STATUS=connecting to the broker");
    let base = daemon.api_base();
    assert!(reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .status()
        .is_success());
    assert_eq!(notify.try_recv(), None);
}

#[tokio::test]
async fn the_broker_password_stays_out_of_logs_metrics_and_check_config() {
    const PASSWORD: &str = "pw-Secret-4711";
    let url = format!("amqp://villas:{PASSWORD}@127.0.0.1:5672/%2F");
    let yaml = config_with_api(&test_exchange(), &new_uuid()).replace(&amqp_url(), &url);
    // The broker refuses the login: the daemon logs its retries, at trace.
    let mut daemon = Daemon::start_with(&yaml, &[("RUST_LOG", "trace")]);
    daemon.wait_log("broker not reachable; retrying");
    let base = daemon.api_base();
    let root = base.trim_end_matches("/api/v1");
    for page in [
        format!("{root}/metrics"),
        format!("{base}/"),
        format!("{base}/health"),
    ] {
        let body = reqwest::get(&page).await.unwrap().text().await.unwrap();
        assert!(!body.contains(PASSWORD), "{page} shows the password");
    }
    daemon.signal("TERM");
    daemon.wait_exit();
    daemon.wait_log("stopped");
    assert!(daemon.log.iter().any(|l| l.contains("villas:***@")));
    let leaked: Vec<&String> = daemon.log.iter().filter(|l| l.contains(PASSWORD)).collect();
    assert!(leaked.is_empty(), "password in the log: {leaked:?}");

    // check-config, the URL from the file and from the environment.
    let output = check_config(&yaml, &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("amqp://villas:***@127.0.0.1:5672/"));
    assert!(!text(&output.stdout).contains(PASSWORD));
    let output = check_config(
        "uuid: 5f0c7a3e-8d0b-4c52-9b1e-2a41c7d9e610\n",
        &[("VILLAS_CONTROLLER__BROKER__URL", &url)],
    );
    assert_eq!(output.status.code(), Some(0));
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(
        all.contains("villas:***@") && !all.contains(PASSWORD),
        "{all}"
    );
}

#[test]
fn unusable_tls_settings_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let cases = [
        (
            "  url: amqps://h/%2F\n  tls:\n    ca_file: /nonexistent/ca.pem\n".to_owned(),
            "key broker.tls.ca_file: cannot read /nonexistent/ca.pem",
        ),
        (
            format!(
                "  url: amqps://h/%2F\n  tls:\n    ca_file: {}\n",
                not_pem.display()
            ),
            "no PEM certificate",
        ),
        (
            format!(
                "  url: amqp://h/%2F\n  tls:\n    ca_file: {}\n",
                not_pem.display()
            ),
            "key broker.tls: TLS files are used only with an amqps:// broker.url",
        ),
        (
            "  url: amqps://h/%2F\n  tls:\n    cert_file: /c.pem\n".to_owned(),
            "key broker.tls.key_file: a client certificate needs both",
        ),
        (
            "  url: amqps://h/%2F\n  tls:\n    ca: /c.pem\n".to_owned(),
            "broker.tls",
        ),
    ];
    for (broker, expected) in cases {
        let output = check_config(&format!("broker:\n{broker}"), &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{broker}: {stderr}");
        assert!(stderr.contains(expected), "{broker}: {stderr}");
    }
}

/// Test certificates made with the openssl CLI: a CA, a server certificate
/// for localhost and a client certificate, all PEM.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl is installed (.ci/run installs it)");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                text(&output.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=villas test CA",
            ],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat());
        for (name, usage, san) in [
            (
                "server",
                "serverAuth",
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
            ),
            ("client", "clientAuth", ""),
        ] {
            std::fs::write(
                dir.path().join(format!("{name}.ext")),
                format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n{san}"),
            )
            .unwrap();
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
                &["-subj", &format!("/CN={name}")],
            ]
            .concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// socat terminating TLS (client certificate required) in front of the
/// local RabbitMQ.
struct TlsProxy {
    child: std::process::Child,
    port: u16,
}

impl TlsProxy {
    fn start(pki: &Pki) -> TlsProxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem")
        );
        let child = Command::new("socat")
            .args([listen.as_str(), "TCP:127.0.0.1:5672"])
            .stdin(Stdio::null())
            .spawn()
            .expect("socat is installed (.ci/run installs it)");
        // Wait until it listens: polling a port has no event to await.
        let deadline = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "socat does not listen on {port}");
            std::thread::park_timeout(Duration::from_millis(20));
        }
        TlsProxy { child, port }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_config(exchange: &str, uuid: &str, sim: &str, port: u16, pki: &Pki, ca: bool) -> String {
    let ca = if ca {
        format!("    ca_file: {}\n", pki.path("ca.pem"))
    } else {
        String::new()
    };
    format!(
        "uuid: {uuid}\nbroker:\n  url: amqps://guest:guest@localhost:{port}/%2F\n  exchange: {exchange}\n  tls:\n{ca}    cert_file: {}\n    key_file: {}\napi:\n  enabled: false\ncomponents:\n{}",
        pki.path("client.pem"),
        pki.path("client.key"),
        dummy(sim, None, "Over TLS")
    )
}

#[tokio::test]
async fn daemon_and_cli_speak_amqp_over_tls_with_a_client_certificate() {
    let pki = Pki::new();
    let proxy = TlsProxy::start(&pki);
    let exchange = test_exchange();
    let mut observer = connect(&exchange).await;
    let (uuid, sim) = (new_uuid(), new_uuid());
    let yaml = tls_config(&exchange, &uuid, &sim, proxy.port, &pki, true);
    let daemon = Daemon::start(&yaml);
    // The daemon's statuses reach the plain-TCP observer: it is connected
    // through the TLS terminator.
    observer.wait_state(&sim, "idle").await.unwrap();

    // The CLI reads the same file and connects the same way.
    let config = daemon.dir.path().join("config.yaml");
    let output = Command::new(binary())
        .arg("-c")
        .arg(&config)
        .args(["simulator", "-u", &sim, "ping"])
        .env("XDG_DATA_HOME", daemon.dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(&sim));

    // Without the lab's CA the broker's certificate is not trusted.
    let untrusting = tls_config(&exchange, &uuid, &sim, proxy.port, &pki, false);
    let path = daemon.dir.path().join("untrusting.yaml");
    std::fs::write(&path, untrusting).unwrap();
    let output = Command::new(binary())
        .arg("-c")
        .arg(&path)
        .args(["simulator", "-u", &sim, "ping"])
        .env("XDG_DATA_HOME", daemon.dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(69));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot use the broker at amqps://guest:***@localhost"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_lab_example_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lab.yaml");
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let output = Command::new(binary())
        .arg("-c")
        .arg(&example)
        .arg("check-config")
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", dir.path())
        // The example's TLS files live under /etc; point them at test ones.
        .env(
            "VILLAS_CONTROLLER__BROKER__TLS__CA_FILE",
            pki.path("ca.pem"),
        )
        .env_remove("VILLAS_CONTROLLER__BROKER__URL")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(stdout.contains("amqps://villas:***@"), "{stdout}");
}

#[test]
fn the_shipped_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/villas-controller.service"),
    )
    .unwrap();
    for line in [
        "Type=notify",
        "RestartPreventExitStatus=78",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    // systemd-analyze checks every key and that ExecStart's binary exists:
    // point it at the built one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("villas-controller.service");
    let unit = unit.replace(
        "/usr/local/bin/villas-controller",
        binary().to_str().unwrap(),
    );
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (.ci/run installs it)");
    let complaints = text(&output.stdout) + &text(&output.stderr);
    assert!(output.status.success(), "{complaints}");
    assert!(
        !complaints.contains("villas-controller.service"),
        "systemd-analyze complains: {complaints}"
    );
}
