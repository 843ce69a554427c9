//! What a `start` creates, built from the component's Job template: the
//! ConfigMap `job-payload-*` holding the action's payload, and the Job
//! with the payload volume added to (not replacing) the template's
//! volumes and mounts. Label, annotation, environment, volume and
//! ConfigMap names are the reference's: cluster tooling and job images
//! depend on them.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{json, Map, Value};

/// Label: every object is part of VILLAS.
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// Label: created by this controller.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label: the role of the object.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Label: the uuid of the component's manager.
pub const LABEL_MANAGER: &str = "villas.fein-aachen.org/ic-manager-uuid";
/// Label: the uuid of the component (what a restarted daemon and
/// `delete` find its objects by).
pub const LABEL_IC: &str = "villas.fein-aachen.org/ic-uuid";
/// The volume (and its mount) holding the payload.
pub const PAYLOAD_VOLUME: &str = "payload";
/// Where the payload volume is mounted.
pub const PAYLOAD_MOUNT: &str = "/config/";
/// The environment variable naming the payload file.
pub const PAYLOAD_ENV: &str = "VILLAS_PAYLOAD_FILE";
/// The payload file, inside the mount.
pub const PAYLOAD_FILE: &str = "/config/payload.json";
/// The payload file's key in the ConfigMap.
pub const PAYLOAD_KEY: &str = "payload.json";
/// The ConfigMap's name prefix.
pub const CONFIG_MAP_PREFIX: &str = "job-payload-";

/// Who the objects belong to.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The component's uuid.
    pub uuid: String,
    /// Its manager's uuid, if it has one.
    pub manager: Option<String>,
    /// The `villas.fein-aachen.org/{name,location,realm}` annotations.
    pub annotations: Map<String, Value>,
    /// Owner references to the controller's pod, where valid (same
    /// namespace; see [`controller_pod_owner`]).
    pub owner_references: Option<Value>,
}

impl Owner {
    /// The reference's labels.
    pub fn labels(&self) -> Map<String, Value> {
        let mut labels = Map::new();
        labels.insert(LABEL_PART_OF.into(), "villas".into());
        labels.insert(LABEL_MANAGED_BY.into(), "villas-controller".into());
        labels.insert(LABEL_COMPONENT.into(), "infrastructure-component".into());
        if let Some(manager) = &self.manager {
            labels.insert(LABEL_MANAGER.into(), manager.clone().into());
        }
        labels.insert(LABEL_IC.into(), self.uuid.clone().into());
        labels
    }

    /// The label selector of this component's objects.
    pub fn selector(&self) -> String {
        format!("{LABEL_IC}={}", self.uuid)
    }
}

/// An owner reference to the controller's own pod (`POD_NAME`, `POD_UID`,
/// as the reference reads them), only when the controller runs in
/// `namespace` (`NAMESPACE`): an owner in another namespace is invalid and
/// makes the garbage collector delete the object at once.
pub fn controller_pod_owner(namespace: &str) -> Option<Value> {
    let name = std::env::var("POD_NAME").ok()?;
    let uid = std::env::var("POD_UID").ok()?;
    let own = std::env::var("NAMESPACE").ok()?;
    (own == namespace)
        .then(|| json!([{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}]))
}

/// Merges `over` into `base`: objects key by key, a `null` removes the
/// key, anything else replaces (the reference's merge).
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                if value.is_null() {
                    base.remove(key);
                } else if let Some(slot) = base.get_mut(key) {
                    merge(slot, value);
                } else {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// Checks that a Job template is a Job with at least one container.
pub fn check_template(template: &Map<String, Value>) -> Result<Job, String> {
    let job: Job =
        serde_json::from_value(Value::Object(template.clone())).map_err(|e| e.to_string())?;
    let containers = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map_or(0, |s| s.containers.len());
    if containers == 0 {
        return Err("spec.template.spec.containers is empty".into());
    }
    Ok(job)
}

/// The ConfigMap holding `payload`.
pub fn config_map(owner: &Owner, payload: &Value) -> Result<ConfigMap, String> {
    let mut metadata = json!({"generateName": CONFIG_MAP_PREFIX, "labels": owner.labels()});
    if let Some(refs) = &owner.owner_references {
        metadata["ownerReferences"] = refs.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": metadata,
        "data": {PAYLOAD_KEY: payload.to_string()},
    }))
    .map_err(|e| e.to_string())
}

/// Inserts `entries` into the object at `slot` (made an object first).
fn extend(slot: &mut Value, entries: Map<String, Value>) {
    if !slot.is_object() {
        *slot = json!({});
    }
    if let Some(map) = slot.as_object_mut() {
        map.extend(entries);
    }
}

/// Appends `item` to the array at `slot` (made an array first).
fn push(slot: &mut Value, item: Value) {
    if !slot.is_array() {
        *slot = json!([]);
    }
    if let Some(items) = slot.as_array_mut() {
        items.push(item);
    }
}

/// The Job a `start` creates: the template merged with the action's
/// `overrides`, named after the template (`generateName`), labelled and
/// annotated, its pods labelled the same, the payload volume mounted into
/// every container beside the template's own mounts.
pub fn job(
    template: &Map<String, Value>,
    overrides: Option<&Map<String, Value>>,
    owner: &Owner,
    config_map: &str,
) -> Result<Job, String> {
    let mut job = Value::Object(template.clone());
    if let Some(overrides) = overrides {
        merge(&mut job, &Value::Object(overrides.clone()));
    }
    job["apiVersion"] = "batch/v1".into();
    job["kind"] = "Job".into();
    if !job["metadata"].is_object() {
        job["metadata"] = json!({});
    }
    let base = job["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or("villas-job")
        .to_owned();
    let metadata = &mut job["metadata"];
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.remove("name");
        metadata.insert("generateName".into(), format!("{base}-").into());
    }
    extend(&mut metadata["labels"], owner.labels());
    extend(&mut metadata["annotations"], owner.annotations.clone());
    if let Some(refs) = &owner.owner_references {
        metadata["ownerReferences"] = refs.clone();
    }
    let pod = &mut job["spec"]["template"];
    extend(&mut pod["metadata"]["labels"], owner.labels());
    let spec = &mut pod["spec"];
    push(
        &mut spec["volumes"],
        json!({"name": PAYLOAD_VOLUME, "configMap": {"name": config_map}}),
    );
    if let Some(containers) = spec["containers"].as_array_mut() {
        for container in containers {
            push(
                &mut container["volumeMounts"],
                json!({"name": PAYLOAD_VOLUME, "mountPath": PAYLOAD_MOUNT, "readOnly": true}),
            );
            push(
                &mut container["env"],
                json!({"name": PAYLOAD_ENV, "value": PAYLOAD_FILE}),
            );
        }
    }
    serde_json::from_value(job).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        let mut annotations = Map::new();
        annotations.insert("villas.fein-aachen.org/name".into(), "sim".into());
        Owner {
            uuid: "u1".into(),
            manager: Some("m1".into()),
            annotations,
            owner_references: None,
        }
    }

    fn template() -> Map<String, Value> {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
               "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never",
                 "volumes": [{"name": "data", "emptyDir": {}}],
                 "containers": [{"name": "pi", "image": "perl",
                   "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}}})
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn the_job_keeps_the_template_mounts_and_adds_the_payload() {
        let job = serde_json::to_value(job(&template(), None, &owner(), "job-payload-x").unwrap())
            .unwrap();
        assert_eq!(job["metadata"]["generateName"], "pi-");
        assert!(job["metadata"].get("name").is_none());
        assert_eq!(job["metadata"]["labels"][LABEL_IC], "u1");
        assert_eq!(job["metadata"]["labels"][LABEL_MANAGER], "m1");
        assert_eq!(
            job["metadata"]["annotations"]["villas.fein-aachen.org/name"],
            "sim"
        );
        let pod = &job["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"][LABEL_IC], "u1");
        let mounts = &pod["spec"]["containers"][0]["volumeMounts"];
        assert_eq!(
            mounts[0]["mountPath"], "/data",
            "the template's mount is kept"
        );
        assert_eq!(mounts[1]["mountPath"], PAYLOAD_MOUNT);
        assert_eq!(
            pod["spec"]["volumes"][1]["configMap"]["name"],
            "job-payload-x"
        );
        assert_eq!(
            pod["spec"]["containers"][0]["env"][0],
            json!({"name": PAYLOAD_ENV, "value": PAYLOAD_FILE})
        );
    }

    #[test]
    fn overrides_merge_and_null_removes() {
        let overrides = json!({"spec": {"backoffLimit": null, "activeDeadlineSeconds": 60}});
        let job = job(
            &template(),
            overrides.as_object(),
            &owner(),
            "job-payload-x",
        )
        .unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, None);
        assert_eq!(spec.active_deadline_seconds, Some(60));
    }

    #[test]
    fn templates_without_containers_are_refused() {
        let bad = json!({"spec": {"template": {"spec": {"containers": []}}}});
        assert!(check_template(bad.as_object().unwrap()).is_err());
        assert!(check_template(&template()).is_ok());
    }
}
