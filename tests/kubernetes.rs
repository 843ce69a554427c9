//! `manager/kubernetes` and `simulator/kubernetes`, black-box: the real
//! daemon binary on the real broker, against the fake Kubernetes API
//! server of `tests/fixtures/kube-fake` (pointed at through `KUBECONFIG`,
//! as the reference is). The test plays the cluster: it says what the
//! Job's pod does, and the fake updates the Job as the Job controller
//! would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use villas_fake_kube::{FakeKube, PodPhase, Resource};

const NS: &str = "villas-controller";

/// The reference's `etc/config_k8s.yaml` components (VILLASframework/
/// controller), with our uuids.
fn reference_components(generic: &str, manager: &str) -> String {
    format!(
        "- type: generic\n  category: manager\n  name: Generic Manager\n  location: Steffens Laptop\n  uuid: {generic}\n\n- category: manager\n  type: kubernetes\n\n  name: Kubernetes Manager\n  location: Steffens Laptop\n  uuid: {manager}\n\n  namespace: {NS}\n"
    )
}

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
    let fake = FakeKube::start().await;
    fake.add_namespace(NS);
    prepare(&fake);
    let dir = tempfile::tempdir().unwrap();
    fake.kubeconfig(dir.path(), NS);
    let exchange = test_exchange();
    let mut client = connect(&exchange).await;
    let (root, generic, manager, sim) = (new_uuid(), new_uuid(), new_uuid(), new_uuid());
    let config = config(&exchange, &root, &reference_components(&generic, &manager));
    let daemon = start_daemon(&config, dir.path());
    client.wait_state(&manager, "idle").await.unwrap();
    client
        .act(
            &manager,
            &json!({"action": "create", "parameters": reference_create(&sim)}),
        )
        .await
        .unwrap();
    client.wait_state(&sim, "idle").await.unwrap();
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
        self.act("start", parameters).await;
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
    lab.client
        .act(
            &lab.manager,
            &json!({"action": "delete", "parameters": {"uuid": lab.sim}}),
        )
        .await
        .unwrap();
    lab.client.wait_state(&lab.sim, "gone").await.unwrap();
    wait_until("the job and its payload are deleted", || {
        lab.fake.names(Resource::Jobs, NS).is_empty()
            && lab.fake.names(Resource::ConfigMaps, NS).is_empty()
    });
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
        assert_eq!(
            error.body["status"]["error"]["status_code"], code,
            "{}",
            error.body
        );
        lab.fake.set_fault(None);
        lab.act("reset", json!({})).await;
        lab.client.wait_state(&lab.sim, "idle").await.unwrap();
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
    let status = lab
        .client
        .wait_for("the manager's api_error", |r| {
            r.uuid().as_deref() == Some(manager.as_str())
                && r.body["status"]["api_error"].is_string()
        })
        .await
        .unwrap();
    assert_eq!(status.state().as_deref(), Some("idle"));
    assert!(status.body["status"]["api_error"]
        .as_str()
        .unwrap()
        .contains("503"));
    lab.fake.set_fault(None);
    let cleared = lab
        .client
        .wait_for("the manager's api_error cleared", |r| {
            r.uuid().as_deref() == Some(manager.as_str())
                && r.body["status"].get("api_error").is_none()
        })
        .await
        .unwrap();
    assert_eq!(cleared.state().as_deref(), Some("idle"));
    let job = lab.start(json!({})).await;
    lab.running(&job).await;
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
    lab.daemon = start_daemon(&lab.config, lab.dir.path());
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
