//! The host telemetry of a MIOB manager's status (the reference's fields:
//! CPU, memory, swap, users, disks, network interfaces, sensors, boot
//! time, processes, USB devices, the FPGA JTAG flag), sampled by a thread
//! of its own into a cache the status reads: the actor never waits (the
//! reference blocks a second per status). A source that is unavailable
//! (no sensors, no USB in a container) is left empty, never an error.

use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use sysinfo::{Components, Disks, Networks, System, Users};

/// FTDI FT232H (USB 0403:6014): the JTAG adapter of the MIOB's FPGA.
const JTAG_USB_ID: (&str, &str) = ("0403", "6014");

/// The latest sample, shared by the sampler thread and the component.
#[derive(Debug, Clone, Default)]
pub struct Cache(Arc<Mutex<Value>>);

impl Cache {
    /// The latest sample (`null` before the first).
    pub fn get(&self) -> Value {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, value: Value) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = value;
    }
}

/// The sampler thread; it ends when this is dropped.
#[derive(Debug)]
pub struct Sampler {
    /// Dropping it wakes and ends the thread.
    _stop: mpsc::Sender<()>,
}

impl Sampler {
    /// Starts sampling every `interval` into `cache`.
    pub fn start(cache: Cache, interval: Duration) -> std::io::Result<Sampler> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("villas-miob-telemetry".into())
            .spawn(move || {
                let mut system = System::new().ok();
                let mut samples: u64 = 0;
                loop {
                    samples += 1;
                    cache.set(sample(system.as_mut(), samples));
                    match stopped.recv_timeout(interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(Sampler { _stop: stop })
    }
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

/// One sample of everything.
fn sample(system: Option<&mut System>, samples: u64) -> Value {
    let mut out = Map::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    out.insert("sampled_at".into(), now.into());
    out.insert("samples".into(), samples.into());
    if let Some(system) = system {
        // CPU usage is measured between two refreshes: the previous
        // sample's and this one.
        system.refresh_cpu_usage();
        system.refresh_cpu_frequency();
        system.refresh_memory();
        let cpus = system.cpus();
        let frequencies: Vec<u64> = cpus.iter().map(sysinfo::Cpu::frequency).collect();
        let load = System::load_average().ok();
        out.insert(
            "cpu".into(),
            json!({
                "physical_cores": System::physical_core_count().ok(),
                "logical_cores": cpus.len(),
                "usage": cpus.iter().map(|c| f64::from(c.usage())).collect::<Vec<_>>(),
                "loadavg": load.map(|l| vec![l.one, l.five, l.fifteen]),
                "frequency": {
                    "current": frequencies.iter().sum::<u64>().checked_div(frequencies.len() as u64),
                    "min": frequencies.iter().min(),
                    "max": frequencies.iter().max(),
                },
            }),
        );
        let (total, available) = (system.total_memory(), system.available_memory());
        out.insert(
            "memory".into(),
            json!({"total": total, "available": available, "used": system.used_memory(),
                   "free": system.free_memory(), "percent": percent(total - available.min(total), total)}),
        );
        let (total, used) = (system.total_swap(), system.used_swap());
        out.insert(
            "swap".into(),
            json!({"total": total, "used": used, "free": system.free_swap(), "percent": percent(used, total)}),
        );
    }
    out.insert("users".into(), users());
    out.insert("disks".into(), disks());
    out.insert("nics".into(), nics());
    out.insert("sensors".into(), json!({"temperatures": temperatures()}));
    out.insert("boottime".into(), System::boot_time().ok().into());
    out.insert("processes".into(), processes().into());
    let usb = usb_devices(Path::new("/sys/bus/usb/devices"));
    let jtag = usb.iter().any(|d| {
        d["vendor_id"].as_str() == Some(JTAG_USB_ID.0)
            && d["product_id"].as_str() == Some(JTAG_USB_ID.1)
    });
    out.insert("usb".into(), Value::Array(usb));
    out.insert("fpga".into(), json!({"jtag_available": jtag}));
    Value::Object(out)
}

fn users() -> Value {
    let Ok(users) = Users::new_with_refreshed_list() else {
        return Value::Array(Vec::new());
    };
    users.iter().map(|u| json!({"name": u.name()})).collect()
}

fn disks() -> Value {
    let Ok(disks) = Disks::new_with_refreshed_list() else {
        return Value::Array(Vec::new());
    };
    disks
        .iter()
        .map(|d| {
            let (total, free) = (d.total_space(), d.available_space());
            json!({
                "device": d.name().to_string_lossy(),
                "mountpoint": d.mount_point().to_string_lossy(),
                "fstype": d.file_system().to_string_lossy(),
                "usage": {"total": total, "used": total.saturating_sub(free), "free": free,
                          "percent": percent(total.saturating_sub(free), total)},
            })
        })
        .collect()
}

fn nics() -> Value {
    let Ok(networks) = Networks::new_with_refreshed_list() else {
        return Value::Object(Map::new());
    };
    networks
        .iter()
        .map(|(name, n)| {
            let addresses: Vec<Value> = n
                .ip_networks()
                .iter()
                .map(|ip| {
                    json!({"family": if ip.addr.is_ipv4() { "AF_INET" } else { "AF_INET6" },
                           "address": ip.addr.to_string(), "prefix": ip.prefix})
                })
                .collect();
            (
                name.to_string_lossy().into_owned(),
                json!({
                    "bytes_sent": n.total_transmitted(), "bytes_recv": n.total_received(),
                    "packets_sent": n.total_packets_transmitted(),
                    "packets_recv": n.total_packets_received(),
                    "errin": n.total_errors_on_received(), "errout": n.total_errors_on_transmitted(),
                    "mac": n.mac_address().to_string(),
                    "addresses": addresses,
                }),
            )
        })
        .collect::<Map<String, Value>>()
        .into()
}

fn temperatures() -> Value {
    let Ok(components) = Components::new_with_refreshed_list() else {
        return Value::Object(Map::new());
    };
    let mut out: Map<String, Value> = Map::new();
    for c in components.iter() {
        let entry = json!({"label": c.label(), "current": c.temperature(),
                           "high": c.max(), "critical": c.critical()});
        let group = c
            .label()
            .split_whitespace()
            .next()
            .unwrap_or("other")
            .to_owned();
        if let Value::Array(list) = out.entry(group).or_insert_with(|| Value::Array(Vec::new())) {
            list.push(entry);
        }
    }
    Value::Object(out)
}

/// The number of processes (numeric entries of /proc).
fn processes() -> Option<usize> {
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .count(),
    )
}

/// The USB devices sysfs lists under `root` (empty when it is absent).
pub fn usb_devices(root: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut devices: Vec<(String, Value)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let dir = entry.path();
            let read = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .ok()
                    .map(|t| t.trim().to_owned())
            };
            let vendor = read("idVendor")?;
            let product = read("idProduct")?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                json!({"vendor_id": vendor, "product_id": product, "product": read("product"),
                       "serial_no": read("serial"), "manufacturer": read("manufacturer")}),
            ))
        })
        .collect();
    devices.sort_by(|a, b| a.0.cmp(&b.0));
    devices.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usb_devices_are_read_from_sysfs_and_a_missing_tree_is_empty() {
        assert!(usb_devices(Path::new("/nonexistent")).is_empty());
        let dir = std::env::temp_dir().join(format!("miob-usb-{}", std::process::id()));
        let dev = dir.join("1-1");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("idVendor"), "0403\n").unwrap();
        std::fs::write(dev.join("idProduct"), "6014\n").unwrap();
        std::fs::create_dir_all(dir.join("usb1-port")).unwrap();
        let devices = usb_devices(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0]["vendor_id"], "0403");
        assert_eq!(devices[0]["product"], Value::Null);
    }

    #[test]
    fn a_sample_has_every_reference_field() {
        let value = sample(System::new().ok().as_mut(), 1);
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
            assert!(value.get(key).is_some(), "{key} missing");
        }
        assert!(value["memory"]["total"].as_u64().unwrap() > 0);
    }
}
