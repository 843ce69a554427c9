//! `manager/miob`, black-box: the real daemon on the real broker; its
//! status carries the reference's host telemetry, refreshed in the
//! background, and it creates and deletes components as the generic
//! manager does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

/// Pings `uuid` until its telemetry has more than `after` samples.
async fn sample_after(client: &mut Client, uuid: &str, after: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "telemetry not refreshed"
        );
        client.act(uuid, &json!({"action": "ping"})).await.unwrap();
        let status = client
            .wait_for("miob status", |r| {
                r.uuid().as_deref() == Some(uuid) && r.body.get("action").is_none()
            })
            .await
            .unwrap();
        let telemetry = status.body["status"]["telemetry"].clone();
        if telemetry["samples"].as_u64().is_some_and(|n| n > after) {
            return telemetry;
        }
    }
}

#[tokio::test]
async fn the_status_carries_refreshed_host_telemetry_and_it_manages_components() {
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (root, miob) = (new_uuid(), new_uuid());
    let components = format!(
        "- category: manager\n  type: miob\n  name: MIOB\n  uuid: {miob}\n  telemetry_interval: 0.2\n"
    );
    let daemon = Daemon::start(&config(&exchange, &root, &components));
    client.wait_state(&miob, "idle").await.unwrap();
    let first = sample_after(&mut client, &miob, 0).await;
    for key in [
        "cpu",
        "memory",
        "swap",
        "users",
        "disks",
        "nics",
        "sensors",
        "boottime",
        "processes",
        "usb",
        "fpga",
    ] {
        assert!(first.get(key).is_some(), "telemetry.{key} missing: {first}");
    }
    assert!(first["memory"]["total"].as_u64().unwrap() > 0);
    assert!(!first["cpu"]["usage"].as_array().unwrap().is_empty());
    assert!(first["processes"].as_u64().unwrap() > 1);
    assert!(first["fpga"]["jtag_available"].is_boolean());
    // Refreshed in the background: a later status has a later sample.
    let n = first["samples"].as_u64().unwrap();
    let later = sample_after(&mut client, &miob, n).await;
    assert!(later["sampled_at"].as_f64() > first["sampled_at"].as_f64());

    // Create and delete as the generic manager.
    let created = new_uuid();
    client
        .act(
            &miob,
            &json!({"action": "create", "parameters": {"category": "simulator", "type": "dummy", "uuid": created}}),
        )
        .await
        .unwrap();
    client.wait_state(&created, "idle").await.unwrap();
    let listed = client
        .wait_for("miob listing the new component", |r| {
            r.uuid().as_deref() == Some(miob.as_str())
                && r.body["components"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|u| *u == created.as_str()))
        })
        .await
        .unwrap();
    assert_eq!(listed.state().as_deref(), Some("idle"));
    client
        .act(
            &miob,
            &json!({"action": "delete", "parameters": {"uuid": created}}),
        )
        .await
        .unwrap();
    client.wait_state(&created, "gone").await.unwrap();
    drop(daemon);
}
