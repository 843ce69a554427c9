//! The reference's own CLI, PyPI villas-controller 0.3.0 (`villas-ctl`),
//! as `.ci/test` (section "reference CLI") makes it under
//! `target/reference-cli`: its commands, run with the two workarounds for
//! its packaging (the unpacked sdist on PYTHONPATH, a `config.json` in its
//! working directory). 0.3.0 hard-codes the exchange `villas`.

use super::amqp_url;
use std::path::PathBuf;
use tokio::process::Command;

/// The exchange 0.3.0 publishes to and monitors (hard-coded).
pub const EXCHANGE: &str = "villas";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/reference-cli")
}

/// `villas-ctl -b <the test broker> ARGS...`, ready to run (killed when
/// dropped); panics when `.ci/test` has not made the environment.
pub fn command(args: &[&str]) -> Command {
    let root = root();
    let ctl = root.join("venv/bin/villas-ctl");
    let src = root.join("src/villas-controller-0.3.0");
    let cwd = root.join("cwd");
    assert!(
        ctl.is_file() && src.is_dir() && cwd.join("config.json").is_file(),
        "no reference CLI under {}: run `bash .ci/test` (section \"reference CLI\")",
        root.display()
    );
    let mut command = Command::new(ctl);
    command
        .arg("-b")
        .arg(amqp_url())
        .args(args)
        .current_dir(cwd)
        .env("PYTHONPATH", src)
        .kill_on_drop(true);
    command
}

/// Runs `villas-ctl -b <broker> simulator -u UUID ACTION [EXTRA...]` to its
/// end (it publishes and exits) and checks that it succeeded.
pub async fn simulator(uuid: &str, action: &str, extra: &[&str]) {
    let mut args = vec!["simulator", "-u", uuid, action];
    args.extend_from_slice(extra);
    let output = command(&args).output().await.expect("villas-ctl runs");
    assert!(
        output.status.success(),
        "villas-ctl {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
