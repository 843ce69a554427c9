//! The `start` parameters of a DPsim run (the reference's start schema:
//! DPsim's own command-line options) and the run configuration the runner
//! is given, built from them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `start` parameters (published as `schema.start`; the titles are
/// VILLASweb's form labels, the reference's).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct StartParameters {
    /// The simulation's name: its log and CSV files are named after it.
    #[schemars(
        title = "Name of log files",
        regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"),
        extend("examples" = ["Simulation_1"])
    )]
    pub name: String,
    /// Seconds of simulated time per step.
    #[schemars(
        title = "Simulation time-step [s]",
        range(min = 1e-9),
        extend("examples" = [5.0e-05])
    )]
    pub timestep: Option<f64>,
    /// Seconds of simulated time.
    #[schemars(
        title = "Simulation duration [s]",
        range(min = 1e-9),
        extend("examples" = [3600.0])
    )]
    pub duration: Option<f64>,
    /// Hz.
    #[serde(rename = "system-freq")]
    #[schemars(
        title = "System frequency [Hz]",
        range(min = 1e-3),
        extend("examples" = [50.0, 60.0])
    )]
    pub system_freq: Option<f64>,
    /// Accepted for compatibility (DPsim's examples select variants with
    /// it); the runner does not use it.
    #[schemars(title = "Scenario selection")]
    pub scenario: Option<i64>,
    /// DPsim's log level.
    #[serde(rename = "log-level")]
    #[schemars(title = "Logging level")]
    pub log_level: Option<LogLevel>,
    /// SP, DP or EMT.
    #[serde(rename = "solver-domain")]
    #[schemars(title = "Domain of solver")]
    pub solver_domain: Option<Domain>,
    /// NRP (power flow, SP only) or MNA.
    #[serde(rename = "solver-type")]
    #[schemars(title = "Type of solver")]
    pub solver_type: Option<Solver>,
    /// ISO 8601 (or DPsim's `%Y%m%dT%H%M%S`): run in real time from then.
    #[serde(rename = "start-at")]
    #[schemars(
        title = "Start time of real-time simulation",
        description = "The date must be given as an ISO8601 formatted string",
        extend("examples" = ["2004-06-14T23:34:30"])
    )]
    pub start_at: Option<String>,
    /// Seconds from now: run in real time from then.
    #[serde(rename = "start-in")]
    #[schemars(
        title = "Start simulation relative to current time [s]",
        range(min = 0)
    )]
    pub start_in: Option<f64>,
    /// Accepted for compatibility: without interfaces there is nothing to
    /// synchronise with.
    #[serde(rename = "start-synch")]
    #[schemars(title = "Sychronize start of simulation with external interfaces")]
    pub start_synch: Option<bool>,
    /// DPsim's steady-state initialisation before the run.
    #[serde(rename = "steady-init")]
    #[schemars(title = "Perform a steady-state initialization prior to the simulation")]
    pub steady_init: Option<bool>,
    /// Accepted for compatibility: without interfaces nothing blocks.
    #[schemars(
        title = "Block execution of each time-step until the arrival of new data on the interfaces"
    )]
    pub blocking: Option<bool>,
    /// Passed to the runner (recorded in its configuration).
    #[schemars(
        title = "User-definable options",
        extend("examples" = [{"Ld": 0.2299, "Lq": 0.0}])
    )]
    pub options: Option<BTreeMap<String, f64>>,
}

/// DPsim's log levels.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum LogLevel {
    NONE,
    INFO,
    DEBUG,
    WARN,
    ERR,
}

/// DPsim's solver domains.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum Domain {
    SP,
    DP,
    EMT,
}

/// DPsim's solvers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum Solver {
    NRP,
    MNA,
}

/// What the runner reads (`run.json` in the run directory).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunConfig {
    /// The simulation's name.
    pub name: String,
    /// The model's CIM files.
    pub model_files: Vec<PathBuf>,
    /// Where DPsim writes its logs and CSV files (relative: in the run
    /// directory).
    pub log_dir: String,
    /// Seconds per step.
    pub timestep: f64,
    /// Seconds simulated.
    pub duration: f64,
    /// Hz.
    pub system_freq: f64,
    /// SP, DP or EMT.
    pub domain: Domain,
    /// NRP or MNA.
    pub solver: Solver,
    /// Steady-state initialisation.
    pub steady_init: bool,
    /// DPsim's log level.
    pub log_level: LogLevel,
    /// Real time from then (the runner parses it).
    pub start_at: Option<String>,
    /// Real time from now plus this.
    pub start_in: Option<f64>,
    /// User-definable options.
    pub options: BTreeMap<String, f64>,
}

impl StartParameters {
    /// Checks what the schema cannot say; `Err` names the parameter.
    pub fn check(&self) -> Result<(), String> {
        if self.solver_type == Some(Solver::NRP)
            && self.solver_domain.is_some_and(|d| d != Domain::SP)
        {
            return Err("solver-type NRP (the power flow) solves the SP domain only".into());
        }
        if self.start_at.is_some() && self.start_in.is_some() {
            return Err("give start-at or start-in, not both".into());
        }
        let (timestep, duration) = (self.timestep(), self.duration());
        if duration / timestep > 1e8 {
            return Err(format!(
                "duration / timestep = {} steps is more than 10^8",
                duration / timestep
            ));
        }
        Ok(())
    }

    fn timestep(&self) -> f64 {
        self.timestep.unwrap_or(1e-3)
    }

    fn duration(&self) -> f64 {
        self.duration.unwrap_or(1.0)
    }

    /// The runner's configuration for the model's `files`.
    pub fn run_config(&self, model_files: Vec<PathBuf>) -> RunConfig {
        let domain = self.solver_domain.unwrap_or(Domain::SP);
        let solver = self.solver_type.unwrap_or(if domain == Domain::SP {
            Solver::NRP
        } else {
            Solver::MNA
        });
        RunConfig {
            name: self.name.clone(),
            model_files,
            log_dir: "logs".into(),
            timestep: self.timestep(),
            duration: self.duration(),
            system_freq: self.system_freq.unwrap_or(50.0),
            domain,
            solver,
            steady_init: self.steady_init.unwrap_or(false),
            log_level: self.log_level.unwrap_or(LogLevel::INFO),
            start_at: self.start_at.clone(),
            start_in: self.start_in,
            options: self.options.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> StartParameters {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_reference_option_names_are_read() {
        let start = parse(json!({"name": "cigre", "timestep": 1e-4, "duration": 2,
            "system-freq": 60, "solver-domain": "EMT", "log-level": "WARN",
            "steady-init": true, "options": {"Ld": 0.2}}));
        let config = start.run_config(vec!["a.xml".into()]);
        assert_eq!(config.domain, Domain::EMT);
        assert_eq!(config.solver, Solver::MNA);
        assert_eq!(config.system_freq, 60.0);
        assert!(config.steady_init);
        let sp = parse(json!({"name": "x"})).run_config(vec![]);
        assert_eq!((sp.domain, sp.solver), (Domain::SP, Solver::NRP));
    }

    #[test]
    fn contradictions_are_refused() {
        let nrp_dp = parse(json!({"name": "x", "solver-domain": "DP", "solver-type": "NRP"}));
        assert!(nrp_dp.check().unwrap_err().contains("SP domain only"));
        let both = parse(json!({"name": "x", "start-at": "20260101T000000", "start-in": 1}));
        assert!(both.check().is_err());
        let huge = parse(json!({"name": "x", "timestep": 1e-9, "duration": 3600}));
        assert!(huge.check().is_err());
    }
}
