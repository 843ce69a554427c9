//! Every metric name, help text, label name and bucket layout of
//! villas-controller, in one place: the daemon, the README's table, the
//! Grafana dashboard and the alert rules in `metrics/` are checked against
//! [`ALL`].
//!
//! Two kinds of IC metrics: a few **per-IC** families (`villas_ic_*`, one
//! series per IC, labelled [`IC_LABELS`]) for what a dashboard shows per
//! IC, and families **aggregated by category and type** (`villas_ics`,
//! `villas_actions_*`, `villas_run_duration_seconds`) for everything whose
//! per-IC breakdown would multiply the series (see `metrics/README.md`).

/// Labels every per-IC series carries, in exposition order; their values
/// come from the IC's configuration (definition), never from a message.
pub const IC_LABELS: [&str; 5] = ["uuid", "name", "category", "type", "realm"];

/// Labels of the families aggregated by kind (besides their own).
pub const TYPE_LABELS: [&str; 2] = ["category", "type"];

/// The realm label (`""` for an IC without a realm).
pub const REALM_LABEL: &str = "realm";

/// The current state: one series per IC, value 1, its [`STATE_LABEL`] the
/// state (the series of the previous state is removed on a transition).
pub const IC_STATE: &str = "villas_ic_state";
/// Help of [`IC_STATE`].
pub const IC_STATE_HELP: &str =
    "Current state of the IC: one series per IC with value 1, labelled with its state";
/// The label of [`IC_STATE`] and [`ICS`] naming the state.
pub const STATE_LABEL: &str = "state";

/// Counter of state changes per IC.
pub const IC_STATE_CHANGES: &str = "villas_ic_state_changes_total";
/// Help of [`IC_STATE_CHANGES`].
pub const IC_STATE_CHANGES_HELP: &str = "State changes of the IC";

/// Unix time of the IC's last state change (or its creation).
pub const IC_STATE_CHANGED: &str = "villas_ic_state_changed_timestamp_seconds";
/// Help of [`IC_STATE_CHANGED`].
pub const IC_STATE_CHANGED_HELP: &str =
    "Unix time the IC entered its current state (its creation for the first state)";

/// Counter of supervisor restarts of the IC.
pub const IC_RESTARTS: &str = "villas_ic_restarts_total";
/// Help of [`IC_RESTARTS`].
pub const IC_RESTARTS_HELP: &str = "Times the supervisor restarted the IC";

/// Gauge: ICs in each state, by category, type and realm.
pub const ICS: &str = "villas_ics";
/// Help of [`ICS`].
pub const ICS_HELP: &str = "ICs in each state, by category, type and realm";

/// Counter of actions carried out, by category, type and action.
pub const ACTIONS_ACCEPTED: &str = "villas_actions_accepted_total";
/// Help of [`ACTIONS_ACCEPTED`].
pub const ACTIONS_ACCEPTED_HELP: &str =
    "Actions that ICs accepted and carried out, by category, type and action";

/// Counter of actions refused or failed, by category, type and action.
pub const ACTIONS_REFUSED: &str = "villas_actions_refused_total";
/// Help of [`ACTIONS_REFUSED`].
pub const ACTIONS_REFUSED_HELP: &str =
    "Actions that ICs refused or failed to carry out (an error status was published), by category, type and action";

/// The label naming the action (one of the protocol's nine actions).
pub const ACTION_LABEL: &str = "action";

/// Histogram of run durations by category and type: from an IC entering
/// `running` until it leaves `running`/`pausing`/`paused`/`resuming`.
pub const RUN_DURATION: &str = "villas_run_duration_seconds";
/// Help of [`RUN_DURATION`].
pub const RUN_DURATION_HELP: &str =
    "Duration of finished runs, by category and type: from an IC entering running until it leaves running, pausing, paused and resuming";
/// Buckets of [`RUN_DURATION`], seconds: 1 s to 12 h, dense around minutes.
pub const RUN_BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 43200.0,
];
/// Gauge: 1 while the bus is connected (the in-process bus always is).
pub const BUS_CONNECTED: &str = "villas_bus_connected";
/// Help of [`BUS_CONNECTED`].
pub const BUS_CONNECTED_HELP: &str = "1 while the daemon is connected to its bus, else 0";

/// Counter of messages taken from the broker.
pub const BUS_RECEIVED: &str = "villas_bus_messages_received_total";
/// Help of [`BUS_RECEIVED`].
pub const BUS_RECEIVED_HELP: &str = "Messages received from the broker";

/// Counter of status messages handed to the broker.
pub const BUS_PUBLISHED: &str = "villas_bus_messages_published_total";
/// Help of [`BUS_PUBLISHED`].
pub const BUS_PUBLISHED_HELP: &str = "Status messages published to the broker";

/// Counter of received messages delivered to no component, by reason.
pub const BUS_DROPPED: &str = "villas_bus_messages_dropped_total";
/// Help of [`BUS_DROPPED`].
pub const BUS_DROPPED_HELP: &str =
    "Received messages delivered to no component, by reason (status: a status message; no_headers: no addressing header; not_an_action: JSON without an action; no_match: addressed no component; redelivered: an action dispatched already)";
/// The label of [`BUS_DROPPED`].
pub const REASON_LABEL: &str = "reason";

/// Counter of malformed action messages (refused with an error status).
pub const BUS_MALFORMED: &str = "villas_bus_messages_malformed_total";
/// Help of [`BUS_MALFORMED`].
pub const BUS_MALFORMED_HELP: &str =
    "Received action messages that were malformed or too large (refused with an error status)";

/// Counter of successful reconnections to the broker.
pub const BUS_RECONNECTS: &str = "villas_bus_reconnects_total";
/// Help of [`BUS_RECONNECTS`].
pub const BUS_RECONNECTS_HELP: &str =
    "Times the daemon connected to the broker again after losing the connection";

/// Histogram of the time an IC takes to handle an action, by action.
pub const ACTION_DURATION: &str = "villas_action_handling_duration_seconds";
/// Help of [`ACTION_DURATION`].
pub const ACTION_DURATION_HELP: &str =
    "Time an IC took to handle an action (check, state change and status publication), by action";
/// Buckets of [`ACTION_DURATION`], seconds: 10 µs to 1 s.
pub const ACTION_BUCKETS: [f64; 11] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 1.0,
];

/// Counter of supervisor escalations.
pub const SUPERVISOR_ESCALATIONS: &str = "villas_supervisor_escalations_total";
/// Help of [`SUPERVISOR_ESCALATIONS`].
pub const SUPERVISOR_ESCALATIONS_HELP: &str =
    "Times a supervisor gave up restarting a component and escalated to its parent";

/// `villas_controller_build_info{version,profile} 1`.
pub const BUILD_INFO: &str = "villas_controller_build_info";
/// Help of [`BUILD_INFO`].
pub const BUILD_INFO_HELP: &str = "Build information of villas-controller (always 1)";

/// Every metric family villas-controller exports besides the standard
/// `process_*` ones, with its type: what the README's table, the dashboard
/// and the alert rules may name.
pub const ALL: [(&str, &str); 17] = [
    (IC_STATE, "gauge"),
    (IC_STATE_CHANGES, "counter"),
    (IC_STATE_CHANGED, "gauge"),
    (IC_RESTARTS, "counter"),
    (ICS, "gauge"),
    (ACTIONS_ACCEPTED, "counter"),
    (ACTIONS_REFUSED, "counter"),
    (RUN_DURATION, "histogram"),
    (BUS_CONNECTED, "gauge"),
    (BUS_RECEIVED, "counter"),
    (BUS_PUBLISHED, "counter"),
    (BUS_DROPPED, "counter"),
    (BUS_MALFORMED, "counter"),
    (BUS_RECONNECTS, "counter"),
    (ACTION_DURATION, "histogram"),
    (SUPERVISOR_ESCALATIONS, "counter"),
    (BUILD_INFO, "gauge"),
];
