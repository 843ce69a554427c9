//! `manager/kubernetes` and `simulator/kubernetes`, black-box: the real
//! daemon binary on the real broker, against the fake Kubernetes API
//! server of `tests/fixtures/kube-fake` (pointed at through `KUBECONFIG`,
//! as the reference is). The test plays the cluster: it says what the
//! Job's pod does, and the fake updates the Job as the Job controller
//! would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http_server::{http_server, Request};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use villas_fake_kube::{FakeKube, PodPhase, Resource};

const NS: &str = "villas-controller";

/// The reference's `etc/config_k8s.yaml` components (VILLASframework/
/// controller), with our uuids.
/// `extra`: more properties of the Kubernetes manager (YAML lines indented
/// two spaces).
fn reference_components(generic: &str, manager: &str, extra: &str) -> String {
    format!(
        "- type: generic\n  category: manager\n  name: Generic Manager\n  location: Steffens Laptop\n  uuid: {generic}\n\n- category: manager\n  type: kubernetes\n\n  name: Kubernetes Manager\n  location: Steffens Laptop\n  uuid: {manager}\n\n  namespace: {NS}\n{extra}"
    )
}

/// Short API timings for the tests of outages (seconds).
const QUICK: &str = "  api_timeout: 1\n  api_grace: 1\n";

/// The reference's `etc/params_k8s_create.yaml`, plus a volume of the
/// template's own (which must be kept).
fn reference_create(uuid: &str) -> Value {
    json!({
        "name": "kubernetes simulator", "location": "ACS lab", "realm": "de.rwth-aachen.eonerc.acs",
        "category": "simulator", "type": "kubernetes", "uuid": uuid,
        "properties": {"job": {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"activeDeadlineSeconds": 3600, "backoffLimit": 1, "ttlSecondsAfterFinished": 3600,
                "template": {"spec": {"restartPolicy": "Never",
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "containers": [{"command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                                    "image": "perl", "name": "pi",
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}}}}
    })
}

/// Polls `cond` (on the fake's state) until it holds, with a deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

struct Lab {
    fake: FakeKube,
    daemon: Daemon,
    client: Client,
    manager: String,
    sim: String,
    /// The daemon's configuration (a restart uses it again).
    config: String,
    /// Holds the kubeconfig and the state directory (kept across restarts).
    dir: tempfile::TempDir,
}

async fn lab() -> Lab {
    lab_with(|_| {}).await
}

/// A lab whose fake is prepared by `prepare` before the daemon starts.
async fn lab_with(prepare: impl FnOnce(&FakeKube)) -> Lab {
    lab_in("", prepare).await
}

/// A lab whose manager has the properties `extra` (see
/// [`reference_components`]).
async fn lab_in(extra: &str, prepare: impl FnOnce(&FakeKube)) -> Lab {
    let fake = FakeKube::start().await;
    fake.add_namespace(NS);
    prepare(&fake);
    let dir = tempfile::tempdir().unwrap();
    fake.kubeconfig(dir.path(), NS);
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (root, generic, manager, sim) = (new_uuid(), new_uuid(), new_uuid(), new_uuid());
    let config = config(
        &exchange,
        &root,
        &reference_components(&generic, &manager, extra),
    );
    let daemon = start_daemon(&config, dir.path());
    // Its first status (an API away from the start may turn it `error`
    // before it is published).
    client
        .wait_for("the manager", |r| r.uuid().as_deref() == Some(&manager))
        .await
        .unwrap();
    client
        .act(
            &manager,
            &json!({"action": "create", "parameters": reference_create(&sim)}),
        )
        .await
        .unwrap();
    client
        .wait_for("the component", |r| r.uuid().as_deref() == Some(&sim))
        .await
        .unwrap();
    // Its look for a Job left by an earlier daemon has been answered (a
    // fault the test injects next does not hit it).
    wait_until("the component looked for its Job", || {
        fake.requests().iter().any(|r| {
            r.method == "GET"
                && r.query.contains(sim.as_str())
                && !r.query.contains("watch")
                && (r.path.ends_with("/jobs") || r.fault.is_some())
        })
    });
    Lab {
        fake,
        daemon,
        client,
        manager,
        sim,
        config,
        dir,
    }
}

fn start_daemon(config: &str, dir: &std::path::Path) -> Daemon {
    let kubeconfig = dir.join("kubeconfig");
    Daemon::start_with(
        config,
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("XDG_DATA_HOME", dir.to_str().unwrap()),
        ],
    )
}

impl Lab {
    async fn act(&self, action: &str, parameters: Value) {
        self.client
            .act(
                &self.sim,
                &json!({"action": action, "parameters": parameters}),
            )
            .await
            .unwrap();
    }

    /// Starts and waits until the Job exists; returns its name.
    async fn start(&mut self, parameters: Value) -> String {
        self.start_with(json!({"action": "start", "parameters": parameters}))
            .await
    }

    /// Sends this `start` action and waits until the Job exists; returns
    /// its name.
    async fn start_with(&mut self, start: Value) -> String {
        self.client.act(&self.sim, &start).await.unwrap();
        let sim = self.sim.clone();
        let created = self
            .client
            .wait_for("the job's name", |r| {
                r.uuid().as_deref() == Some(sim.as_str())
                    && r.body["status"]["job_name"].is_string()
            })
            .await
            .unwrap();
        assert_eq!(created.state().as_deref(), Some("starting"));
        self.forget();
        created.body["status"]["job_name"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `delete` of the component through its manager, until it is `gone`.
    async fn delete_through_the_manager(&mut self) {
        self.client
            .act(
                &self.manager,
                &json!({"action": "delete", "parameters": {"uuid": self.sim}}),
            )
            .await
            .unwrap();
        self.client.wait_state(&self.sim, "gone").await.unwrap();
    }

    async fn running(&mut self, job: &str) {
        self.fake.set_pod(NS, job, PodPhase::Running);
        self.client.wait_state(&self.sim, "running").await.unwrap();
        self.forget();
    }

    /// Drops what `sim` published before the last wait.
    fn forget(&mut self) {
        let sim = self.sim.clone();
        self.client
            .backlog
            .retain(|r| r.uuid().as_deref() != Some(sim.as_str()));
    }

    /// The states `sim` published since the last wait, up to a barrier.
    async fn published_until_barrier(&mut self) -> Vec<String> {
        let before = self.client.barrier(std::slice::from_ref(&self.sim)).await;
        before
            .get(&self.sim)
            .map(|seen| seen.iter().filter_map(Received::state).collect())
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_and_completes_with_the_reference_parameters() {
    let mut lab = lab().await;
    let job = lab.start(json!({"foo": 1})).await;
    assert!(job.starts_with("pi-"), "{job}");

    // The ConfigMap holds the whole action; the Job is labelled,
    // annotated and mounts the payload beside the template's own volume.
    let maps = lab.fake.objects(Resource::ConfigMaps, NS);
    assert_eq!(maps.len(), 1);
    let map_name = maps[0]["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(map_name.starts_with("job-payload-"));
    let payload: Value =
        serde_json::from_str(maps[0]["data"]["payload.json"].as_str().unwrap()).unwrap();
    assert_eq!(payload["action"], "start");
    assert_eq!(payload["parameters"]["foo"], 1);
    let object = lab.fake.object(Resource::Jobs, NS, &job).unwrap();
    let labels = &object["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/part-of"], "villas");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "villas-controller");
    assert_eq!(
        labels["app.kubernetes.io/component"],
        "infrastructure-component"
    );
    assert_eq!(labels["villas.fein-aachen.org/ic-uuid"], lab.sim.as_str());
    assert_eq!(
        labels["villas.fein-aachen.org/ic-manager-uuid"],
        lab.manager.as_str()
    );
    let annotations = &object["metadata"]["annotations"];
    assert_eq!(
        annotations["villas.fein-aachen.org/name"],
        "kubernetes simulator"
    );
    assert_eq!(annotations["villas.fein-aachen.org/location"], "ACS lab");
    assert_eq!(
        annotations["villas.fein-aachen.org/realm"],
        "de.rwth-aachen.eonerc.acs"
    );
    assert!(
        object["metadata"].get("ownerReferences").is_none(),
        "no controller pod here"
    );
    let pod = &object["spec"]["template"]["spec"];
    let mounts = &pod["containers"][0]["volumeMounts"];
    assert_eq!(
        mounts[0]["mountPath"], "/data",
        "the template's mount is kept"
    );
    assert_eq!(
        mounts[1],
        json!({"name": "payload", "mountPath": "/config/", "readOnly": true})
    );
    assert_eq!(pod["volumes"][0]["name"], "data");
    assert_eq!(pod["volumes"][1]["configMap"]["name"], map_name.as_str());
    assert_eq!(
        pod["containers"][0]["env"][0],
        json!({"name": "VILLAS_PAYLOAD_FILE", "value": "/config/payload.json"})
    );

    lab.running(&job).await;

    // Every watch is cut and the history compacted: the watcher lists
    // again and sees the Job and its running pod again. Nothing changes.
    let before = lab.fake.requests().len();
    lab.fake.expire_watches();
    wait_until("the watchers listed again and watch", || {
        let requests = lab.fake.requests();
        let later = &requests[before..];
        ["/jobs", "/pods"].iter().all(|kind| {
            later
                .iter()
                .rposition(|r| r.path.ends_with(kind) && r.query.contains("watch=true"))
                .is_some_and(|watch| {
                    later[..watch].iter().any(|r| {
                        r.path.ends_with(kind) && !r.query.contains("watch=") && r.method == "GET"
                    })
                })
        })
    });
    assert_eq!(
        lab.published_until_barrier().await,
        Vec::<String>::new(),
        "replayed events changed nothing"
    );

    lab.fake.set_pod(NS, &job, PodPhase::Succeeded);
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    assert!(
        lab.fake.names(Resource::ConfigMaps, NS).is_empty(),
        "the payload is deleted when the job completed"
    );
    assert_eq!(
        lab.fake.names(Resource::Jobs, NS),
        std::slice::from_ref(&job),
        "the finished job is kept"
    );

    // The next start replaces the finished Job.
    let second = lab.start(json!({})).await;
    assert_ne!(second, job);
    assert_eq!(lab.fake.names(Resource::Jobs, NS), [second]);
    drop(lab.daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_errors_with_their_reason_and_reset_cleans_up() {
    let mut lab = lab().await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    // backoffLimit 1: the first failure is retried, the second fails the Job.
    lab.fake.set_pod(NS, &job, PodPhase::Failed);
    lab.fake.set_pod(NS, &job, PodPhase::Running);
    lab.fake.set_pod(NS, &job, PodPhase::Failed);
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    let info = &error.body["status"]["error"];
    assert_eq!(info["reason"], "BackoffLimitExceeded", "{info}");
    assert_eq!(info["pod"]["exit_code"], 3, "{info}");
    assert!(info["message"]
        .as_str()
        .unwrap()
        .contains("BackoffLimitExceeded"));
    wait_until("the failed run's payload is deleted", || {
        lab.fake.names(Resource::ConfigMaps, NS).is_empty()
    });

    lab.act("reset", json!({})).await;
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["resetting", "idle"]
    );
    assert!(lab.fake.names(Resource::Jobs, NS).is_empty());
    assert!(lab.fake.names(Resource::Pods, NS).is_empty());

    // activeDeadlineSeconds passed.
    let job = lab.start(json!({})).await;
    lab.fake.fail_job(
        NS,
        &job,
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    );
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.body["status"]["error"]["reason"], "DeadlineExceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_deletes_the_job_and_its_payload_and_pause_is_refused() {
    let mut lab = lab().await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;

    lab.act("pause", json!({})).await;
    let refused = lab
        .client
        .wait_error(&lab.sim, "unsupported-action")
        .await
        .unwrap();
    assert_eq!(refused.state().as_deref(), Some("running"), "state kept");
    assert!(refused.body["status"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cannot be paused"));

    lab.act("stop", json!({})).await;
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    assert!(lab.fake.names(Resource::Jobs, NS).is_empty());
    assert!(lab.fake.names(Resource::ConfigMaps, NS).is_empty());
    assert!(lab.fake.names(Resource::Pods, NS).is_empty());
    let delete = lab
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE" && r.path.ends_with(&format!("/jobs/{job}")))
        .unwrap();
    assert_eq!(delete.body["propagationPolicy"], "Background");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_component_removes_its_objects() {
    let mut lab = lab().await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    lab.delete_through_the_manager().await;
    wait_until("the job and its payload are deleted", || {
        lab.fake.names(Resource::Jobs, NS).is_empty()
            && lab.fake.names(Resource::ConfigMaps, NS).is_empty()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_the_api_refused_is_done_when_it_answers_again() {
    let mut lab = lab_in("  check_interval: 0.2\n", |_| {}).await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    lab.fake.fail_next("DELETE", Resource::Jobs, 503, 1);
    lab.delete_through_the_manager().await;
    let manager = lab.manager.clone();
    let error = lab.client.wait_state(&manager, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("could not delete"), "{message}");
    assert_eq!(lab.fake.names(Resource::Jobs, NS), [job]);
    lab.client
        .backlog
        .retain(|r| r.uuid().as_deref() != Some(manager.as_str()));
    // The next namespace check passes and the deletion is done.
    lab.client.wait_state(&manager, "idle").await.unwrap();
    assert!(lab.fake.names(Resource::Jobs, NS).is_empty());
    assert!(lab.fake.names(Resource::ConfigMaps, NS).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_template_is_refused_before_anything_is_created() {
    let mut lab = lab().await;
    let mut params = reference_create(&new_uuid());
    params["properties"]["job"]["spec"]["template"]["spec"]["containers"] = json!([]);
    lab.client
        .act(
            &lab.manager,
            &json!({"action": "create", "parameters": params}),
        )
        .await
        .unwrap();
    let refused = lab
        .client
        .wait_error(&lab.manager, "invalid-parameters")
        .await
        .unwrap();
    assert_eq!(refused.state().as_deref(), Some("idle"));
    assert!(
        lab.fake.requests().iter().all(|r| r.method == "GET"),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_errors_with_their_reason_and_the_component_recovers() {
    let mut lab = lab().await;
    for code in [401, 403, 503] {
        lab.fake.set_fault(Some(code));
        lab.act("start", json!({})).await;
        let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
        assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
        assert_eq!(
            error.body["status"]["error"]["status_code"], code,
            "{}",
            error.body
        );
        lab.forget();
        // No reset: the component looks for its Job until the API answers.
        lab.fake.set_fault(None);
        assert_eq!(
            lab.client.states_until(&lab.sim, "idle").await.unwrap(),
            ["resetting", "idle"]
        );
        lab.forget();
    }
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_followed_across_an_api_outage() {
    let mut lab = lab().await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    lab.fake.down();
    let sim = lab.sim.clone();
    let noticed = lab
        .client
        .wait_for("the outage in the status", |r| {
            r.uuid().as_deref() == Some(sim.as_str()) && r.body["status"]["api_error"].is_string()
        })
        .await
        .unwrap();
    assert_eq!(
        noticed.state().as_deref(),
        Some("running"),
        "the job's state is kept"
    );
    // The job completes while the API is away; the watch catches up.
    lab.fake.set_pod(NS, &job, PodPhase::Succeeded);
    lab.fake.up().await;
    lab.forget();
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["running", "stopping", "idle"],
        "the first status after the outage clears api_error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_service_account_is_enough() {
    let mut lab = lab_with(|fake| fake.forbid_cluster_wide(true)).await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    lab.act("stop", json!({})).await;
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    let requests = lab.fake.requests();
    assert!(
        requests.iter().all(|r| r.path.contains("/namespaces/")),
        "only namespaced requests: {:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(requests
        .iter()
        .any(|r| r.method == "GET" && r.path == format!("/api/v1/namespaces/{NS}")));
    // The manager's namespace check passed: it published no api_error.
    let manager = lab.manager.clone();
    lab.client
        .act(&manager, &json!({"action": "ping"}))
        .await
        .unwrap();
    let status = lab
        .client
        .wait_for("the manager's status", |r| {
            r.uuid().as_deref() == Some(manager.as_str())
        })
        .await
        .unwrap();
    assert!(
        status.body["status"].get("api_error").is_none(),
        "{}",
        status.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_namespace_or_an_unreachable_api_does_not_stop_the_daemon() {
    let mut lab = lab_with(|fake| fake.set_fault(Some(503))).await;
    let manager = lab.manager.clone();
    let error = lab.client.wait_state(&manager, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("503"), "{message}");
    // The component cannot know its Job's state either.
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
    lab.fake.set_fault(None);
    lab.client.wait_state(&manager, "idle").await.unwrap();
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    lab.forget();
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_shows_api_outages_until_the_api_answers() {
    // Checked every 0.2 s; a missing namespace is an error too.
    let mut lab = lab_in("  api_timeout: 1\n  check_interval: 0.2\n", |_| {}).await;
    let manager = lab.manager.clone();
    for (what, reason) in [
        ("down", "error"),
        ("403", "403"),
        ("stalled", "no answer within 1s"),
    ] {
        lab.client.backlog.clear();
        match what {
            "down" => lab.fake.down(),
            "403" => lab.fake.set_fault(Some(403)),
            _ => lab.fake.stall(true),
        }
        let error = lab.client.wait_state(&manager, "error").await.unwrap();
        assert_eq!(
            error.error_kind().as_deref(),
            Some("remote-error"),
            "{what}"
        );
        let message = error.body["status"]["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{what}: {message}");
        // The daemon is not blocked: the component answers meanwhile.
        lab.client
            .act(&lab.sim, &json!({"action": "ping"}))
            .await
            .unwrap();
        lab.client.wait_state(&lab.sim, "idle").await.unwrap();
        match what {
            "down" => lab.fake.up().await,
            "403" => lab.fake.set_fault(None),
            _ => lab.fake.stall(false),
        }
        lab.client.wait_state(&manager, "idle").await.unwrap();
    }
    // A namespace that is not there (yet) is an error until it is.
    lab.client.backlog.clear();
    lab.fake.remove_namespace(NS);
    let error = lab.client.wait_state(&manager, "error").await.unwrap();
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("not found"), "{message}");
    lab.fake.add_namespace(NS);
    lab.client.wait_state(&manager, "idle").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_api_is_an_error_not_a_hang() {
    let mut lab = lab_in(QUICK, |_| {}).await;
    lab.fake.stall(true);
    lab.act("start", json!({})).await;
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
    assert_eq!(error.body["status"]["error"]["reason"], "timeout");
    // The daemon is not blocked: the manager answers meanwhile.
    let manager = lab.manager.clone();
    lab.client
        .act(&manager, &json!({"action": "ping"}))
        .await
        .unwrap();
    lab.client.wait_state(&manager, "idle").await.unwrap();
    lab.forget();
    lab.fake.stall(false);
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["resetting", "idle"],
        "nothing was created: idle again"
    );
    assert!(lab.fake.names(Resource::Jobs, NS).is_empty());
    assert!(lab.fake.names(Resource::ConfigMaps, NS).is_empty());
    lab.forget();
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_watch_is_an_error_after_the_grace_period_and_the_job_is_taken_up_again() {
    let mut lab = lab_in(QUICK, |_| {}).await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    // A blip: the watch fails, the API is back before the grace period
    // ends, nothing changed: no error, the state is confirmed.
    let sim = lab.sim.clone();
    lab.fake.down();
    let noticed = lab
        .client
        .wait_for("the blip in the status", |r| {
            r.uuid().as_deref() == Some(sim.as_str()) && r.body["status"]["api_error"].is_string()
        })
        .await
        .unwrap();
    assert_eq!(noticed.state().as_deref(), Some("running"));
    lab.fake.up().await;
    let confirmed = lab
        .client
        .wait_for("the blip cleared", |r| {
            r.uuid().as_deref() == Some(sim.as_str()) && r.body["status"].get("api_error").is_none()
        })
        .await
        .unwrap();
    assert_eq!(confirmed.state().as_deref(), Some("running"));
    assert!(
        !lab.client
            .backlog
            .iter()
            .any(|r| r.uuid().as_deref() == Some(sim.as_str())
                && r.state().as_deref() != Some("running")),
        "no other state"
    );
    lab.forget();
    // 503 to every request: the watch cannot resume.
    lab.fake.set_fault(Some(503));
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("503"), "{message}");
    lab.forget();
    lab.fake.set_fault(None);
    assert_eq!(
        lab.client.states_until(&lab.sim, "running").await.unwrap(),
        ["resetting", "idle", "starting", "running"],
        "back to the state its Job has"
    );
    lab.forget();
    // Stalled: the Job completes meanwhile.
    lab.fake.stall(true);
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
    lab.fake.set_pod(NS, &job, PodPhase::Succeeded);
    lab.forget();
    lab.fake.stall(false);
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["resetting", "idle"]
    );
    wait_until("the completed run's payload is deleted", || {
        lab.fake.names(Resource::ConfigMaps, NS).is_empty()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_name_is_tried_again_and_a_lasting_conflict_is_an_error() {
    let mut lab = lab().await;
    lab.fake.fail_next("POST", Resource::Jobs, 409, 1);
    let job = lab.start(json!({})).await;
    let posts = lab
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/jobs"))
        .count();
    assert_eq!(posts, 2, "one conflict, one new name");
    lab.running(&job).await;
    lab.act("stop", json!({})).await;
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    lab.forget();

    lab.fake.fail_next("POST", Resource::Jobs, 409, 3);
    lab.act("start", json!({})).await;
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    let info = &error.body["status"]["error"];
    assert_eq!(error.error_kind().as_deref(), Some("failed"), "{info}");
    assert_eq!(info["status_code"], 409, "{info}");
    assert_eq!(info["reason"], "AlreadyExists", "{info}");
    assert!(lab.fake.names(Resource::Jobs, NS).is_empty());
    assert!(
        lab.fake.names(Resource::ConfigMaps, NS).is_empty(),
        "the payload is deleted again"
    );
}

/// A request the upload server received: method, path, authorization,
/// body.
/// An HTTP server on 127.0.0.1:0 answering uploads (PUT) with `code`.
fn upload_server(code: u16) -> (String, std::sync::mpsc::Receiver<Request>) {
    http_server(Vec::new(), code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_are_uploaded_before_idle_and_a_failed_upload_is_an_error() {
    use std::io::Read;
    let mut lab = lab().await;
    let (base, uploads) = upload_server(201);
    let start = |url: String| {
        json!({"action": "start", "parameters": {},
               "results": {"url": url, "token": "results-token"}})
    };
    let job = lab.start_with(start(format!("{base}/results/1"))).await;
    lab.running(&job).await;
    let pod = lab.fake.names(Resource::Pods, NS)[0].clone();
    lab.fake.set_log(NS, &pod, "3.14159\n");
    lab.fake.set_pod(NS, &job, PodPhase::Succeeded);
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    // Received before idle was published.
    let Request {
        method,
        path,
        authorization,
        body,
    } = uploads.try_recv().expect("uploaded before idle");
    assert_eq!((method.as_str(), path.as_str()), ("PUT", "/results/1"));
    assert_eq!(authorization.as_deref(), Some("Bearer results-token"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    let mut log = String::new();
    archive
        .by_name(&format!("logs/{pod}.log"))
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(log, "3.14159\n");
    let mut text = String::new();
    archive
        .by_name("job.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let object: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(object["metadata"]["name"], job.as_str());
    assert_eq!(object["status"]["succeeded"], 1);
    assert!(lab.fake.names(Resource::ConfigMaps, NS).is_empty());

    // An upload the server refuses: error, with the reason.
    let (failing, _refused) = upload_server(500);
    lab.client
        .act(&lab.sim, &start(format!("{failing}/results/2")))
        .await
        .unwrap();
    let sim = lab.sim.clone();
    let created = lab
        .client
        .wait_for("the second job's name", |r| {
            r.uuid().as_deref() == Some(sim.as_str())
                && r.body["status"]["job_name"].is_string()
                && r.body["status"]["job_name"] != job.as_str()
        })
        .await
        .unwrap();
    let second = created.body["status"]["job_name"]
        .as_str()
        .unwrap()
        .to_owned();
    lab.forget();
    lab.running(&second).await;
    lab.fake.set_pod(NS, &second, PodPhase::Succeeded);
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    let message = error.body["status"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("could not upload the results"),
        "{message}"
    );
    assert!(message.contains("500"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_takes_up_its_jobs() {
    let mut lab = lab().await;
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    drop(lab.daemon); // SIGKILL: the Job runs on
    let posts = lab
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    // The API is away when the daemon starts: the component cannot know
    // its Job's state, and says so.
    lab.fake.set_fault(Some(503));
    lab.daemon = start_daemon(&lab.config, lab.dir.path());
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert_eq!(error.error_kind().as_deref(), Some("remote-error"));
    lab.fake.set_fault(None);
    // Statuses published before the new daemon reached the broker are
    // coalesced to the latest: without the look for its Job the restored
    // component would stay `idle`.
    let sim = lab.sim.clone();
    let running = lab
        .client
        .wait_for("the restored component running", |r| {
            r.uuid().as_deref() == Some(sim.as_str()) && r.state().as_deref() == Some("running")
        })
        .await
        .unwrap();
    assert_eq!(running.body["status"]["job_name"], job.as_str());
    assert_eq!(
        lab.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        posts,
        "nothing new was created"
    );
    lab.forget();
    lab.fake.set_pod(NS, &job, PodPhase::Succeeded);
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["stopping", "idle"]
    );
    assert!(lab.fake.names(Resource::ConfigMaps, NS).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_uploads_the_results_of_a_job_that_completed_meanwhile() {
    let mut lab = lab().await;
    let (base, uploads) = upload_server(201);
    let job = lab
        .start_with(json!({"action": "start", "parameters": {},
                           "results": {"url": format!("{base}/results/9")}}))
        .await;
    lab.running(&job).await;
    drop(lab.daemon); // SIGKILL: the Job runs on and completes
    lab.fake.set_pod(NS, &job, PodPhase::Succeeded);
    lab.daemon = start_daemon(&lab.config, lab.dir.path());
    // Where the results go is read back from the run's payload.
    let Request { method, path, .. } = uploads.recv_timeout(DEADLINE).unwrap();
    assert_eq!((method.as_str(), path.as_str()), ("PUT", "/results/9"));
    wait_until("the completed run's payload is deleted", || {
        lab.fake.names(Resource::ConfigMaps, NS).is_empty()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_deleted_by_others_are_seen() {
    let mut lab = lab().await;
    // A completed Job removed by its ttlSecondsAfterFinished: reset is fine.
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    lab.fake.set_pod(NS, &job, PodPhase::Succeeded);
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    lab.fake.delete(Resource::Jobs, NS, &job);
    lab.forget();
    lab.act("reset", json!({})).await;
    assert_eq!(
        lab.client.states_until(&lab.sim, "idle").await.unwrap(),
        ["resetting", "idle"]
    );
    // A running Job deleted by someone else: error, saying so.
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
    lab.fake.delete(Resource::Jobs, NS, &job);
    let error = lab.client.wait_state(&lab.sim, "error").await.unwrap();
    assert!(error.body["status"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("deleted outside the controller"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_components_own_start_schema_is_published_and_checked() {
    let mut lab = lab().await;
    let sim = new_uuid();
    let mut params = reference_create(&sim);
    let schema = json!({"type": "object", "required": ["runtime"],
                        "properties": {"runtime": {"type": "number", "title": "Runtime (s)"}}});
    params["properties"]["schema"] = json!({"start": schema});
    lab.client
        .act(
            &lab.manager,
            &json!({"action": "create", "parameters": params}),
        )
        .await
        .unwrap();
    let idle = lab.client.wait_state(&sim, "idle").await.unwrap();
    assert_eq!(idle.body["schema"]["start"], schema);
    lab.sim = sim;
    lab.act("start", json!({"foo": 1})).await;
    lab.client
        .wait_error(&lab.sim, "invalid-parameters")
        .await
        .unwrap();
    assert!(
        lab.fake.names(Resource::Jobs, NS).is_empty(),
        "nothing was created"
    );
    lab.act("reset", json!({})).await;
    lab.client.wait_state(&lab.sim, "idle").await.unwrap();
    let job = lab.start(json!({"runtime": 2})).await;
    lab.running(&job).await;
}
