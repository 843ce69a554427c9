//! # villas-metrics
//!
//! The Prometheus metric names of villas-controller, defined in one place
//! so that the daemon, the dashboards and the alert rules in `metrics/`
//! agree. Metrics are registered on an explicit [`prometheus::Registry`],
//! never a global one.

use prometheus::{IntGaugeVec, Opts, Registry};

/// `villas_controller_build_info{version} 1`.
pub const BUILD_INFO: &str = "villas_controller_build_info";

/// Registers the build-info gauge on `registry` and sets it to 1.
pub fn register_build_info(registry: &Registry, version: &str) -> prometheus::Result<IntGaugeVec> {
    let gauge = IntGaugeVec::new(
        Opts::new(
            BUILD_INFO,
            "Build information of villas-controller (always 1)",
        ),
        &["version"],
    )?;
    registry.register(Box::new(gauge.clone()))?;
    gauge.with_label_values(&[version]).set(1);
    Ok(gauge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_exposed_on_the_given_registry() {
        let registry = Registry::new();
        register_build_info(&registry, "1.2.3").unwrap();
        let families = registry.gather();
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].name(), BUILD_INFO);
        assert!(
            register_build_info(&registry, "1.2.3").is_err(),
            "registered twice"
        );
    }
}
