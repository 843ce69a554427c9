//! The files under `metrics/` stay true to the metric definitions: the
//! alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and the Grafana dashboard, the alert rules and
//! the README's metrics table name only metrics that exist (the dashboard
//! and the table every one of them). promtool comes with Debian's
//! `prometheus` package (installed by `.ci/run`); its absence fails.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use villas_metrics::names;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .output()
        .expect("promtool runs: install Debian's `prometheus` package (.ci/run does)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{report}");
    report
}

#[test]
fn alert_rules_pass_promtool_check() {
    let report = promtool(&["check", "rules", "alerts.yml"]);
    assert!(report.contains("SUCCESS"), "{report}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let report = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(report.contains("SUCCESS"), "{report}");
}

/// Every `villas_*` identifier in `text`.
fn villas_identifiers(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(offset) = text[i..].find("villas_") {
        let start = i + offset;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |e| start + e);
        if boundary {
            found.insert(text[start..end].to_owned());
        }
        i = end;
    }
    found
}

/// The metric family an identifier belongs to (histogram series carry a
/// suffix), if it is one of ours.
fn family_of(identifier: &str) -> Option<&'static str> {
    names::ALL.iter().map(|(name, _)| *name).find(|name| {
        identifier == *name
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| identifier.strip_suffix(suffix) == Some(name))
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_dashboard_uses_every_metric_and_only_ours() {
    let text = read(&dir().join("grafana-dashboard.json"));
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut exprs = Vec::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        exprs.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_owned()),
        );
    }
    let used: BTreeSet<&str> = villas_identifiers(&exprs.join("\n"))
        .iter()
        .map(|id| {
            family_of(id).unwrap_or_else(|| panic!("the dashboard names {id}, which is no metric"))
        })
        .collect();
    for (name, _) in names::ALL {
        assert!(used.contains(name), "the dashboard does not show {name}");
    }
}

#[test]
fn alert_rules_name_only_our_metrics_and_cover_the_required_alerts() {
    let text = read(&dir().join("alerts.yml"));
    for id in villas_identifiers(&text) {
        assert!(
            family_of(&id).is_some(),
            "alerts.yml names {id}, which is no metric"
        );
    }
    for alert in [
        "VillasControllerDown",
        "VillasBusDisconnected",
        "VillasIcInError",
        "VillasIcRestartStorm",
        "VillasSupervisorEscalation",
    ] {
        assert!(
            text.contains(&format!("alert: {alert}\n")),
            "{alert} missing"
        );
    }
    let rules = text.matches("- alert: ").count();
    assert_eq!(
        text.matches("severity: ").count(),
        rules,
        "every alert has a severity"
    );
    assert_eq!(
        text.matches("summary: ").count(),
        rules,
        "every alert has a summary"
    );
    assert_eq!(
        text.matches("description: ").count(),
        rules,
        "every alert has a description"
    );
}

#[test]
fn the_readme_table_lists_every_metric_with_its_type() {
    let readme = read(&dir().join("../README.md"));
    for (name, kind) in names::ALL {
        let row = format!("| `{name}` | {kind} |");
        assert!(
            readme.contains(&row),
            "README.md lacks the table row starting {row:?}"
        );
    }
    // Every metric row of the table names an existing metric.
    for row in readme.lines().filter(|l| l.starts_with("| `villas_")) {
        let name = row.split('`').nth(1).unwrap();
        assert!(
            family_of(name).is_some(),
            "README.md's table names {name}, which is no metric"
        );
    }
}
