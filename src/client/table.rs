//! The human view of ICs shared by `discover`, `simulator ping --table`
//! and `monitor --table`: one row per IC from its latest status, in
//! aligned columns; with the ICs of several daemons (a lab on one broker),
//! grouped by daemon (its root manager, found by following `managed_by`)
//! and host, each group under a `#` line.

use serde_json::Value;
use std::collections::BTreeMap;
use villas_sdk::protocol::StatusView;
use villas_sdk::State;

/// One IC as the table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct IcRow {
    /// Its uuid.
    pub uuid: String,
    /// `properties.name`.
    pub name: String,
    /// `category/type`.
    pub kind: String,
    /// The current state.
    pub state: State,
    /// Seconds since it (re)started.
    pub uptime: Option<f64>,
    /// Its manager's uuid.
    pub managed_by: Option<String>,
    /// The error message it carries, if any.
    pub error: Option<String>,
    /// The host its daemon runs on (`status.host`).
    pub host: String,
}

impl IcRow {
    /// The row of a status; `None` without a uuid.
    pub fn from_status(status: &StatusView) -> Option<IcRow> {
        let text = |key: &str| status.properties.get(key).and_then(Value::as_str);
        let error = status.status.error.as_ref().map(|error| {
            error
                .get("message")
                .or_else(|| error.get("msg"))
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned)
        });
        Some(IcRow {
            uuid: status.uuid()?.to_owned(),
            name: text("name").unwrap_or_default().to_owned(),
            kind: format!(
                "{}/{}",
                text("category").unwrap_or("?"),
                text("type").unwrap_or("?")
            ),
            state: status.status.state,
            uptime: status.status.uptime,
            managed_by: status.status.managed_by.clone(),
            error,
            host: status
                .status
                .other
                .get("host")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

/// The latest row of every IC seen, by uuid.
#[derive(Debug, Default)]
pub struct IcTable {
    /// Rows by uuid.
    rows: BTreeMap<String, IcRow>,
}

impl IcTable {
    /// Records a status; returns whether the table changed in a way worth
    /// redrawing (a new IC, another state or error), not a mere uptime tick.
    pub fn update(&mut self, status: &StatusView) -> bool {
        let Some(row) = IcRow::from_status(status) else {
            return false;
        };
        let changed = self
            .rows
            .get(&row.uuid)
            .is_none_or(|old| old.state != row.state || old.error != row.error);
        self.rows.insert(row.uuid.clone(), row);
        changed
    }

    /// How many ICs it holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, sorted by category/type, then name, then uuid;
    /// with several daemons, one group per daemon and host, sorted by
    /// host, then daemon, each under a line `# daemon <root uuid> (<its
    /// name>) on <host>: N IC(s)`.
    pub fn render(&self) -> String {
        let mut groups: BTreeMap<(String, String), Vec<&IcRow>> = BTreeMap::new();
        for row in self.rows.values() {
            let root = self.root_of(row);
            let host = self.rows.get(root).map_or(&row.host, |r| &r.host);
            groups
                .entry((host.clone(), root.to_owned()))
                .or_default()
                .push(row);
        }
        for rows in groups.values_mut() {
            rows.sort_by(|a, b| (&a.kind, &a.name, &a.uuid).cmp(&(&b.kind, &b.name, &b.uuid)));
        }
        if groups.len() < 2 {
            let rows = groups.into_values().next().unwrap_or_default();
            return render(&rows, &[]);
        }
        let mut rows = Vec::new();
        let mut titles = Vec::new();
        for ((host, root), members) in groups {
            let name = self
                .rows
                .get(&root)
                .map(|r| r.name.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or("-");
            let host = if host.is_empty() { "?" } else { host.as_str() };
            titles.push((
                rows.len(),
                format!(
                    "# daemon {root} ({name}) on {host}: {} IC(s)",
                    members.len()
                ),
            ));
            rows.extend(members);
        }
        render(&rows, &titles)
    }

    /// The daemon an IC belongs to: its root manager, found by following
    /// `managed_by` through the ICs seen (an IC whose manager was not seen
    /// counts under that manager's uuid).
    fn root_of<'a>(&'a self, row: &'a IcRow) -> &'a str {
        let mut current = row;
        // Bounded: a manager chain is short; a cycle must not hang us.
        for _ in 0..32 {
            match current.managed_by.as_deref() {
                Some(manager) if manager != current.uuid => match self.rows.get(manager) {
                    Some(next) => current = next,
                    None => return manager,
                },
                _ => return &current.uuid,
            }
        }
        &current.uuid
    }
}

/// Aligned columns: UUID NAME CATEGORY/TYPE STATE UPTIME MANAGED_BY, and
/// ERROR when some row has one; each of `titles` (row index, text) is a
/// line of its own before that row, outside the columns.
pub fn render(rows: &[&IcRow], titles: &[(usize, String)]) -> String {
    let with_error = rows.iter().any(|row| row.error.is_some());
    let mut lines: Vec<Vec<String>> = vec![[
        "UUID",
        "NAME",
        "CATEGORY/TYPE",
        "STATE",
        "UPTIME",
        "MANAGED_BY",
    ]
    .map(String::from)
    .to_vec()];
    if with_error {
        lines[0].push("ERROR".into());
    }
    for row in rows {
        let mut line = vec![
            row.uuid.clone(),
            if row.name.is_empty() {
                "-".into()
            } else {
                row.name.clone()
            },
            row.kind.clone(),
            row.state.as_str().to_owned(),
            row.uptime.map_or_else(|| "-".into(), format_uptime),
            row.managed_by.clone().unwrap_or_else(|| "-".into()),
        ];
        if with_error {
            line.push(row.error.clone().unwrap_or_else(|| "-".into()));
        }
        lines.push(line);
    }
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        // Line 0 is the header; row i is line i + 1.
        for (_, title) in titles.iter().filter(|(row, _)| row + 1 == index) {
            out.push_str(title);
            out.push('\n');
        }
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c + 1 == columns {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                let pad = widths[c] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `12.3s`, `4m05s`, `2h03m`, `3d04h`.
pub fn format_uptime(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    // Truncation to whole seconds is intended for display.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = seconds as u64;
    let (days, hours, minutes, secs) = (
        whole / 86_400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else {
        format!("{minutes}m{secs:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn status(uuid: &str, name: &str, state: &str) -> StatusView {
        serde_json::from_value(json!({
            "status": {"state": state, "uptime": 75.0, "managed_by": "m-1"},
            "properties": {"uuid": uuid, "name": name, "category": "simulator", "type": "dummy"}
        }))
        .unwrap()
    }

    #[test]
    fn rows_are_aligned_and_complete() {
        let mut table = IcTable::default();
        assert!(table.update(&status("u-1", "Sim A", "idle")));
        assert!(table.update(&status("u-2", "B", "running")));
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("UUID  NAME   CATEGORY/TYPE"));
        assert!(lines[1].contains("simulator/dummy  running  1m15s   m-1"));
        assert!(lines[2].contains("Sim A  simulator/dummy  idle"));
    }

    fn member(uuid: &str, manager: Option<&str>, host: &str) -> StatusView {
        serde_json::from_value(json!({
            "status": {"state": "idle", "managed_by": manager, "host": host},
            "properties": {"uuid": uuid, "name": uuid, "category": "simulator", "type": "dummy"}
        }))
        .unwrap()
    }

    #[test]
    fn several_daemons_are_grouped_by_daemon_and_host() {
        let mut table = IcTable::default();
        for status in [
            member("root-b", None, "host-2"),
            member("b-1", Some("root-b"), "host-2"),
            member("root-a", Some("root-a"), "host-1"),
            member("mgr-a", Some("root-a"), "host-1"),
            member("a-1", Some("mgr-a"), "host-1"),
        ] {
            table.update(&status);
        }
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("UUID"), "{text}");
        assert_eq!(lines[1], "# daemon root-a (root-a) on host-1: 3 IC(s)");
        assert!(lines[2..5].iter().all(|l| !l.starts_with('#')), "{text}");
        assert!(lines[2..5].iter().any(|l| l.starts_with("a-1 ")), "{text}");
        assert_eq!(lines[5], "# daemon root-b (root-b) on host-2: 2 IC(s)");
        assert!(lines[6..].iter().any(|l| l.starts_with("b-1 ")), "{text}");
        assert_eq!(lines.len(), 8, "{text}");
        // Columns stay aligned across groups.
        let state_at: HashSet<usize> = lines
            .iter()
            .filter(|l| !l.starts_with('#') && !l.starts_with("UUID"))
            .map(|l| l.find("idle").unwrap())
            .collect();
        assert_eq!(state_at.len(), 1, "{text}");
    }

    #[test]
    fn one_daemon_has_no_group_line() {
        let mut table = IcTable::default();
        table.update(&member("root", None, "h"));
        table.update(&member("x", Some("root"), "h"));
        assert!(!table.render().contains('#'));
    }

    #[test]
    fn only_state_changes_redraw() {
        let mut table = IcTable::default();
        assert!(table.update(&status("u-1", "A", "idle")));
        assert!(!table.update(&status("u-1", "A", "idle")));
        assert!(table.update(&status("u-1", "A", "starting")));
    }

    #[test]
    fn uptime_is_human() {
        assert_eq!(format_uptime(12.34), "12.3s");
        assert_eq!(format_uptime(245.0), "4m05s");
        assert_eq!(format_uptime(7380.0), "2h03m");
        assert_eq!(format_uptime(3.0 * 86_400.0 + 4.0 * 3600.0), "3d04h");
    }
}
