//! The standard worker statuses a provider maps its raw statuses to.

use std::fmt;
use std::str::FromStr;

/// A standard worker status (§6.1 of the spec), plus [`Unknown`](Status::Unknown) for raw
/// values a provider cannot map.
///
/// [`Provider::map_status`](crate::Provider::map_status) returns one of these. Standard names
/// parse back with [`FromStr`] (case-insensitively), which helps when a cloud already uses
/// them:
///
/// ```
/// use cpi_guest_sdk::Status;
///
/// assert_eq!("RUNNING".parse(), Ok(Status::Running));
/// assert_eq!(Status::from_name("rebooting"), Status::Unknown);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Up and serving.
    Running,
    /// Shut down; can be started again.
    Stopped,
    /// On its way to running.
    Starting,
    /// On its way to stopped.
    Stopping,
    /// Being created.
    Provisioning,
    /// Being deleted.
    Terminating,
    /// Failed.
    Error,
    /// Paused, with its state kept.
    Suspended,
    /// A raw status with no standard equivalent.
    Unknown,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 9] = [
        Status::Running,
        Status::Stopped,
        Status::Starting,
        Status::Stopping,
        Status::Provisioning,
        Status::Terminating,
        Status::Error,
        Status::Suspended,
        Status::Unknown,
    ];

    /// The standard name (`"running"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Stopping => "stopping",
            Status::Provisioning => "provisioning",
            Status::Terminating => "terminating",
            Status::Error => "error",
            Status::Suspended => "suspended",
            Status::Unknown => "unknown",
        }
    }

    /// The status whose standard name is `name` (ignoring case and surrounding whitespace),
    /// or [`Unknown`](Status::Unknown).
    pub fn from_name(name: &str) -> Status {
        name.parse().unwrap_or(Status::Unknown)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a name that is not a standard status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus(String);

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a standard worker status", self.0)
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        let t = s.trim();
        Status::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(
                Status::from_name(&status.to_string().to_uppercase()),
                status
            );
        }
        assert!("bogus".parse::<Status>().is_err());
    }
}
