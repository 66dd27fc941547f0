//! Status normalization (§6.1, §6.2): every `status` field carries a standard value and keeps
//! the provider's raw one in `raw_status`.

use indexmap::IndexMap;
use serde_json::{Map, Value};

/// The worker statuses of §6.1 and authentication statuses of §6.2 (each plus `unknown`),
/// from the contract the guest SDK shares.
pub use cpi_contract::{AUTH_STATUSES, WORKER_STATUSES};

/// Built-in raw → standard worker statuses, covering AWS, GCE, Azure, DigitalOcean, Hetzner,
/// Linode, libvirt, VirtualBox, Proxmox, Docker, VMware, OpenStack and TrueNAS vocabularies.
/// Keys are lower-case; lookups also try the value with `VM `/`PowerState/` prefixes removed.
const WORKER_TABLE: &[(&str, &str)] = &[
    ("running", "running"),
    ("active", "running"),
    ("on", "running"),
    ("up", "running"),
    ("online", "running"),
    ("ready", "running"),
    ("started", "running"),
    ("poweredon", "running"),
    ("powered on", "running"),
    ("idle", "running"),
    ("healthy", "running"),
    ("migrating", "running"),
    ("stopped", "stopped"),
    ("off", "stopped"),
    ("poweroff", "stopped"),
    ("powered off", "stopped"),
    ("poweredoff", "stopped"),
    ("shut off", "stopped"),
    ("shutoff", "stopped"),
    ("shutdown", "stopped"),
    ("halted", "stopped"),
    ("offline", "stopped"),
    ("inactive", "stopped"),
    ("exited", "stopped"),
    ("created", "stopped"),
    ("deallocated", "stopped"),
    ("archive", "stopped"),
    ("down", "stopped"),
    ("starting", "starting"),
    ("booting", "starting"),
    ("powering on", "starting"),
    ("rebooting", "starting"),
    ("restarting", "starting"),
    ("resuming", "starting"),
    ("restoring", "starting"),
    ("hard_reboot", "starting"),
    ("reboot", "starting"),
    ("stopping", "stopping"),
    ("shutting down", "stopping"),
    ("shutting_down", "stopping"),
    ("powering off", "stopping"),
    ("in shutdown", "stopping"),
    ("deallocating", "stopping"),
    ("suspending", "stopping"),
    ("saving", "stopping"),
    ("provisioning", "provisioning"),
    ("pending", "provisioning"),
    ("creating", "provisioning"),
    ("building", "provisioning"),
    ("build", "provisioning"),
    ("new", "provisioning"),
    ("initializing", "provisioning"),
    ("staging", "provisioning"),
    ("scheduled", "provisioning"),
    ("rebuilding", "provisioning"),
    ("cloning", "provisioning"),
    ("deploying", "provisioning"),
    ("terminating", "terminating"),
    ("shutting-down", "terminating"),
    ("terminated", "terminating"),
    ("deleting", "terminating"),
    ("destroying", "terminating"),
    ("removing", "terminating"),
    ("deleted", "terminating"),
    ("error", "error"),
    ("failed", "error"),
    ("crashed", "error"),
    ("dead", "error"),
    ("aborted", "error"),
    ("faulted", "error"),
    ("degraded", "error"),
    ("unavail", "error"),
    ("unhealthy", "error"),
    ("broken", "error"),
    ("suspended", "suspended"),
    ("paused", "suspended"),
    ("pmsuspended", "suspended"),
    ("saved", "suspended"),
    ("hibernated", "suspended"),
    ("shelved", "suspended"),
    ("billing_suspension", "suspended"),
];

/// Built-in raw → standard authentication statuses.
const AUTH_TABLE: &[(&str, &str)] = &[
    ("authenticated", "authenticated"),
    ("true", "authenticated"),
    ("valid", "authenticated"),
    ("ok", "authenticated"),
    ("yes", "authenticated"),
    ("active", "authenticated"),
    ("logged in", "authenticated"),
    ("success", "authenticated"),
    ("unauthenticated", "unauthenticated"),
    ("false", "unauthenticated"),
    ("not authenticated", "unauthenticated"),
    ("not configured", "unauthenticated"),
    ("none", "unauthenticated"),
    ("no", "unauthenticated"),
    ("logged out", "unauthenticated"),
    ("expired", "expired"),
    ("token expired", "expired"),
    ("invalid", "invalid"),
    ("denied", "invalid"),
    ("unauthorized", "invalid"),
    ("rejected", "invalid"),
    ("revoked", "invalid"),
    ("insufficient_permissions", "insufficient_permissions"),
    ("insufficient permissions", "insufficient_permissions"),
    ("forbidden", "insufficient_permissions"),
];

/// Which vocabulary a result's `status` fields use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// §6.1 worker statuses.
    Worker,
    /// §6.2 authentication statuses (for `test_auth`, `configure_auth`, ...).
    Auth,
}

/// Words naming a worker (the §6.1 resource) in action names: the standard's own and the
/// platforms' (`list_instances`, `start_vm`, `get_server`, `list_droplets`).
const WORKER_NOUNS: &[&str] = &[
    "worker",
    "workers",
    "instance",
    "instances",
    "vm",
    "vms",
    "server",
    "servers",
    "machine",
    "machines",
    "droplet",
    "droplets",
];

/// Words that may follow the resource noun without naming another resource
/// (`get_worker_status`, `get_worker_info`), or stand alone after a verb (`power_on`).
const QUALIFIERS: &[&str] = &["status", "state", "info", "details", "on", "off"];

impl Vocabulary {
    /// The vocabulary an action's `status` fields use, by the action's name, or `None` when
    /// they are left exactly as the platform reported them:
    ///
    /// - a name containing `auth` or `credential` (`test_auth`, `configure_auth`): §6.2;
    /// - a worker action: the name ends in a worker noun (`worker`, `workers`, `instance(s)`,
    ///   `vm(s)`, `server(s)`, `machine(s)`, `droplet(s)`), possibly followed by `status`,
    ///   `state`, `info` or `details` (`get_worker_status`), or names no resource at all
    ///   (`reboot`, `power_on`): §6.1;
    /// - anything else (`list_disks`, `create_snapshot`, `list_images`, `list_worker_types`):
    ///   `None`. §6.1 describes workers; a disk's `available` or an image's `READY` is not a
    ///   worker status, and mapping it would only lose information.
    pub fn for_action(action: &str) -> Option<Vocabulary> {
        let lower = action.to_ascii_lowercase();
        if lower.contains("auth") || lower.contains("credential") {
            return Some(Vocabulary::Auth);
        }
        let mut words: Vec<&str> = lower.split(['_', '-']).filter(|w| !w.is_empty()).collect();
        if !words.is_empty() {
            words.remove(0); // the verb
        }
        while words.last().is_some_and(|w| QUALIFIERS.contains(w)) {
            words.pop();
        }
        match words.last() {
            None => Some(Vocabulary::Worker),
            Some(noun) if WORKER_NOUNS.contains(noun) => Some(Vocabulary::Worker),
            Some(_) => None,
        }
    }

    /// [`Vocabulary::for_action`], unless the action's `normalize_status` flag says otherwise:
    /// `false` leaves its statuses as reported; `true` normalizes them (§6.2 for an
    /// authentication action, §6.1 otherwise; GCE's `attach_disk` answers with the instance).
    pub fn for_flagged_action(action: &str, normalize_status: Option<bool>) -> Option<Vocabulary> {
        match normalize_status {
            Some(false) => None,
            Some(true) => Some(Vocabulary::for_action(action).unwrap_or(Vocabulary::Worker)),
            None => Vocabulary::for_action(action),
        }
    }
}

/// Maps raw statuses to standard ones: the provider's own table first, then the built-in one.
#[derive(Debug, Clone, Default)]
pub struct StatusMapper {
    custom: IndexMap<String, String>,
}

impl StatusMapper {
    /// A mapper with a provider's extra entries (raw value → standard value).
    pub fn new(custom: &IndexMap<String, String>) -> Self {
        StatusMapper {
            custom: custom
                .iter()
                .map(|(k, v)| (k.trim().to_lowercase(), v.clone()))
                .collect(),
        }
    }

    /// The standard status for `raw`, or `unknown`.
    pub fn map(&self, raw: &str, vocabulary: Vocabulary) -> String {
        let key = raw.trim().to_lowercase();
        if let Some(found) = self.custom.get(&key) {
            return found.clone();
        }
        let table = match vocabulary {
            Vocabulary::Worker => WORKER_TABLE,
            Vocabulary::Auth => AUTH_TABLE,
        };
        let stripped = key
            .strip_prefix("powerstate/")
            .or_else(|| key.strip_prefix("vm "))
            .unwrap_or(&key);
        for candidate in [key.as_str(), stripped] {
            if let Some((_, standard)) = table.iter().find(|(raw, _)| *raw == candidate) {
                return (*standard).to_string();
            }
        }
        "unknown".to_string()
    }

    /// Normalizes every string `status` field in `value`, recursively, adding `raw_status`
    /// right after it.
    pub fn normalize(&self, value: &mut Value, vocabulary: Vocabulary) {
        match value {
            Value::Array(items) => items.iter_mut().for_each(|v| self.normalize(v, vocabulary)),
            Value::Object(map) => {
                for v in map.values_mut() {
                    self.normalize(v, vocabulary);
                }
                if let Some(Value::String(raw)) = map.get("status")
                    && !map.contains_key("raw_status")
                {
                    let raw = raw.clone();
                    let standard = self.map(&raw, vocabulary);
                    *map = insert_after(std::mem::take(map), "status", standard, raw);
                }
            }
            _ => {}
        }
    }
}

fn insert_after(
    map: Map<String, Value>,
    key: &str,
    standard: String,
    raw: String,
) -> Map<String, Value> {
    let mut out = Map::with_capacity(map.len() + 1);
    for (k, v) in map {
        if k == key {
            out.insert(k, Value::String(standard.clone()));
            out.insert("raw_status".to_string(), Value::String(raw.clone()));
        } else {
            out.insert(k, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_vocabularies_case_insensitively() {
        let m = StatusMapper::default();
        for (raw, want) in [
            ("active", "running"),
            ("poweroff", "stopped"),
            ("shut off", "stopped"),
            ("off", "stopped"),
            ("pending", "provisioning"),
            ("shutting-down", "terminating"),
            ("PROVISIONING", "provisioning"),
            ("VM deallocated", "stopped"),
            ("PowerState/running", "running"),
            ("ONLINE", "running"),
            ("weird", "unknown"),
        ] {
            assert_eq!(m.map(raw, Vocabulary::Worker), want, "{raw}");
        }
        assert_eq!(m.map("Expired", Vocabulary::Auth), "expired");
    }

    #[test]
    fn only_worker_and_auth_actions_have_a_vocabulary() {
        for action in [
            "create_worker",
            "list_workers",
            "get_worker",
            "get_worker_status",
            "start_worker",
            "force_stop_worker",
            "list_instances",
            "start_vm",
            "get_server",
            "reboot",
            "power_on",
        ] {
            assert_eq!(
                Vocabulary::for_action(action),
                Some(Vocabulary::Worker),
                "{action}"
            );
        }
        for action in ["test_auth", "configure_auth", "get_credentials"] {
            assert_eq!(
                Vocabulary::for_action(action),
                Some(Vocabulary::Auth),
                "{action}"
            );
        }
        for action in [
            "list_disks",
            "create_disk",
            "attach_disk",
            "create_snapshot",
            "list_snapshots",
            "list_images",
            "list_networks",
            "list_worker_types",
            "list_worker_volumes",
            "create_worker_template",
            "list_regions",
            "list_nodes",
        ] {
            assert_eq!(Vocabulary::for_action(action), None, "{action}");
        }
        // A provider decides for an action the name rule gets wrong.
        assert_eq!(
            Vocabulary::for_flagged_action("attach_disk", Some(true)),
            Some(Vocabulary::Worker)
        );
        assert_eq!(
            Vocabulary::for_flagged_action("get_worker", Some(false)),
            None
        );
        assert_eq!(
            Vocabulary::for_flagged_action("test_auth", Some(true)),
            Some(Vocabulary::Auth)
        );
        assert_eq!(Vocabulary::for_flagged_action("list_disks", None), None);
    }

    #[test]
    fn provider_table_wins_and_raw_is_kept_next_to_status() {
        let custom = IndexMap::from([("ONLINE".to_string(), "stopped".to_string())]);
        let m = StatusMapper::new(&custom);
        let mut v = json!([{"id": "a", "status": "online", "x": 1}, {"status": "shut off"}]);
        m.normalize(&mut v, Vocabulary::Worker);
        assert_eq!(
            v,
            json!([{"id": "a", "status": "stopped", "raw_status": "online", "x": 1},
                   {"status": "stopped", "raw_status": "shut off"}])
        );
        let keys: Vec<_> = v[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["id", "status", "raw_status", "x"]);
    }
}
