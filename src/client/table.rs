//! The human view of ICs shared by `discover`, `simulator ping --table`
//! and `monitor --table`: one row per IC from its latest status, in
//! aligned columns.

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

    /// The table as text, sorted by category/type, then name, then uuid.
    pub fn render(&self) -> String {
        let mut rows: Vec<&IcRow> = self.rows.values().collect();
        rows.sort_by(|a, b| (&a.kind, &a.name, &a.uuid).cmp(&(&b.kind, &b.name, &b.uuid)));
        render(&rows)
    }
}

/// Aligned columns: UUID NAME CATEGORY/TYPE STATE UPTIME MANAGED_BY, and
/// ERROR when some row has one.
pub fn render(rows: &[&IcRow]) -> String {
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
    for line in &lines {
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
