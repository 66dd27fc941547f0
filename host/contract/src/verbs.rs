//! The standard's action verbs and what cpi may assume of an action from its name.

/// The required methods of §2.1.
pub const REQUIRED_METHODS: [&str; 7] = [
    "test_install",
    "list_workers",
    "create_worker",
    "delete_worker",
    "get_worker",
    "start_worker",
    "stop_worker",
];

/// Name prefixes of actions that only read (§5): safe to repeat after a transient failure.
pub const READ_ONLY_PREFIXES: [&str; 4] = ["get_", "list_", "has_", "test_"];

/// Name prefixes of actions that move a worker to a new status, which `--wait` can wait for.
pub const WAITABLE_PREFIXES: [&str; 4] = ["create_", "start_", "stop_", "reboot_"];

/// Whether `--wait` applies to an action (create, start, stop, reboot).
pub fn is_waitable(action: &str) -> bool {
    WAITABLE_PREFIXES.iter().any(|p| action.starts_with(p))
}

/// Whether an action is read-only by its name (`get_`, `list_`, `has_`, `test_`).
pub fn is_read_only(action: &str) -> bool {
    READ_ONLY_PREFIXES.iter().any(|p| action.starts_with(p))
}

/// Whether repeating an action after a transient failure is safe by its name alone (an
/// action's own `idempotent` flag overrides this): the read-only ones.
pub fn is_retryable(action: &str) -> bool {
    is_read_only(action)
}

/// Whether an action is one of the required methods of §2.1.
pub fn is_required(action: &str) -> bool {
    REQUIRED_METHODS.contains(&action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_by_name() {
        assert!(is_read_only("get_worker") && is_retryable("list_workers"));
        assert!(!is_retryable("create_worker") && !is_read_only("delete_worker"));
        assert!(is_required("stop_worker") && !is_required("reboot_worker"));
        assert!(is_waitable("reboot_worker") && !is_waitable("get_worker"));
    }
}
