//! Naming (§5 action names, §7 parameter names): the standard's name for a common synonym.

use super::{Report, Severity};

/// §5 naming: `verb_resource`, with the standard's verbs.
pub(super) fn check_name(name: &str, path: &str, report: &mut Report) {
    const VERBS: &[&str] = &[
        "list",
        "create",
        "delete",
        "get",
        "has",
        "start",
        "stop",
        "reboot",
        "suspend",
        "resume",
        "update",
        "resize",
        "rename",
        "tag",
        "untag",
        "attach",
        "detach",
        "test",
        "configure",
        "initialize",
        "setup",
        "validate",
        "install",
        "set",
        "rotate",
    ];
    let (verb, resource) = name.split_once('_').unwrap_or((name, ""));
    if let Some(standard) = standard_action_name(name) {
        report.push(
            Severity::Warning,
            path.to_string(),
            format!("action name '{name}' does not follow the §5 conventions: the standard name is '{standard}'"),
        );
    } else if !VERBS.contains(&verb) || resource.is_empty() {
        report.push(
            Severity::Warning,
            path.to_string(),
            format!("action name '{name}' does not follow the §5 conventions (verb_resource, verbs: list, create, delete, get, has, start, stop, ...)"),
        );
    } else if verb == "list" && !resource.ends_with('s') {
        report.push(
            Severity::Warning,
            path.to_string(),
            format!("'{name}': list_ takes a plural resource (§5.1)"),
        );
    }
}

/// The §5 name for an action named with a common synonym of a standard verb
/// (`power_on_worker` → `start_worker`, `terminate_worker` → `delete_worker`).
pub fn standard_action_name(name: &str) -> Option<String> {
    const SYNONYMS: &[(&str, &str)] = &[
        ("power_on_", "start"),
        ("poweron_", "start"),
        ("boot_", "start"),
        ("power_off_", "stop"),
        ("poweroff_", "stop"),
        ("shutdown_", "stop"),
        ("halt_", "stop"),
        ("restart_", "reboot"),
        ("reset_", "reboot"),
        ("terminate_", "delete"),
        ("destroy_", "delete"),
        ("remove_", "delete"),
        ("describe_", "get"),
        ("show_", "get"),
        ("add_", "create"),
        ("modify_", "update"),
    ];
    SYNONYMS.iter().find_map(|(prefix, verb)| {
        let resource = name.strip_prefix(prefix)?;
        let fits = match *verb {
            // The §5.2 state operations are worker operations: restarting a service is not
            // rebooting it.
            "start" | "stop" | "reboot" => resource == "worker",
            // `add_tag_to_resource` names two resources; no single §5 name fits it.
            _ => !resource.is_empty() && !resource.contains("_to_") && !resource.contains("_from_"),
        };
        fits.then(|| format!("{verb}_{resource}"))
    })
}

/// The §7 standard name for a common non-standard parameter name.
pub fn standard_param_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "instance_id" | "server_id" | "vm_id" | "vmid" | "droplet_id" | "linode_id"
        | "machine_id" | "container_id" => "worker_id",
        "instance_type" | "machine_type" | "server_type" | "flavor" | "plan" | "vm_size"
        | "worker_size" | "shape" | "bundle_id" => "worker_type",
        "image_id" | "image_name" | "os" | "blueprint_id" | "template" | "os_image" => "image",
        "location" | "datacenter" | "metro" => "region",
        "availability_zone" | "availability_domain" => "zone",
        "volume_id" => "disk_id",
        "volume_type" | "storage_type" | "disk_sku" => "disk_type",
        "disk_size" | "disk_size_gb" | "volume_size" | "volume_size_gb" | "size_in_gb" => "size_gb",
        "network_id" | "network_name" | "vpc" | "vpc_id" => "network",
        "subnet_id" | "subnetwork" => "subnet",
        "ip" | "public_ip" | "ipv4" => "ip_address",
        "instance_name" | "server_name" | "vm_name" | "worker_name" | "hostname" => "name",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(name: &str) -> Vec<String> {
        let mut report = Report::for_file(std::path::Path::new("t.json"));
        check_name(name, "actions.x", &mut report);
        report.findings.into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn action_names_follow_verb_resource_with_standard_verbs() {
        assert!(warnings("get_worker").is_empty());
        assert!(warnings("list_workers").is_empty());
        assert!(warnings("terminate_worker")[0].contains("'delete_worker'"));
        assert!(warnings("frobnicate_worker")[0].contains("verb_resource"));
        assert!(warnings("list_worker")[0].contains("plural"));
    }

    #[test]
    fn synonyms_map_to_the_standard_name_only_where_one_fits() {
        assert_eq!(
            standard_action_name("power_on_worker").as_deref(),
            Some("start_worker")
        );
        assert_eq!(standard_action_name("restart_service"), None);
        assert_eq!(standard_action_name("add_tag_to_resource"), None);
        assert_eq!(standard_param_name("instance_id"), Some("worker_id"));
        assert_eq!(standard_param_name("worker_id"), None);
    }
}
