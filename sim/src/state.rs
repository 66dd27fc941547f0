//! The simulator's persisted state and its atomic load/save.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::SimError;

/// Current on-disk format version.
pub(crate) const FORMAT: u32 = 1;
/// How many issued tokens are kept (oldest are dropped first).
const MAX_ISSUED_TOKENS: usize = 1000;

/// A worker's lifecycle phase; transitional phases settle after the configured transition time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    Provisioning,
    Running,
    Stopping,
    Stopped,
    Starting,
    Rebooting,
}

impl Phase {
    /// The status string shown to clients.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Provisioning => "provisioning",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Starting => "starting",
            Phase::Rebooting => "rebooting",
        }
    }

    /// The phase a transitional phase settles into (settled phases map to themselves).
    fn settled(self) -> Phase {
        match self {
            Phase::Provisioning | Phase::Starting | Phase::Rebooting | Phase::Running => {
                Phase::Running
            }
            Phase::Stopping | Phase::Stopped => Phase::Stopped,
        }
    }
}

/// A stored worker ("instance").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Worker {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub image: String,
    pub region: String,
    pub network: String,
    pub ip: String,
    pub created_at: u64,
    pub phase: Phase,
    pub phase_since_ms: u64,
}

impl Worker {
    /// Settles a transitional phase whose transition time has elapsed.
    pub(crate) fn settle(&mut self, now_ms: u64, transition_ms: u64) {
        if now_ms.saturating_sub(self.phase_since_ms) >= transition_ms {
            let settled = self.phase.settled();
            if settled != self.phase {
                self.phase = settled;
                self.phase_since_ms = self.phase_since_ms.saturating_add(transition_ms);
            }
        }
    }

    /// Moves to `phase` starting now.
    pub(crate) fn enter(&mut self, phase: Phase, now_ms: u64) {
        self.phase = phase;
        self.phase_since_ms = now_ms;
    }

    /// The API representation (`id` first, no nested objects).
    pub(crate) fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "image": self.image,
            "region": self.region,
            "network": self.network,
            "status": self.phase.as_str(),
            "ip": self.ip,
            "created_at": self.created_at,
        })
    }
}

/// A stored TrueNAS-style pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pool {
    pub id: u64,
    pub name: String,
    pub topology: Value,
    pub jail_up: bool,
}

impl Pool {
    /// The API representation (`id` first).
    pub(crate) fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "path": format!("/mnt/{}", self.name),
            "status": if self.jail_up { "ONLINE" } else { "OFFLINE" },
            "healthy": self.jail_up,
            "topology": self.topology,
            "jail": { "state": if self.jail_up { "up" } else { "down" } },
        })
    }

    /// The dataset entry for this pool's root dataset.
    pub(crate) fn dataset_view(&self) -> Value {
        json!({
            "id": self.name,
            "name": self.name,
            "pool": self.name,
            "type": "FILESYSTEM",
        })
    }
}

/// Everything the simulator persists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PState {
    pub format: u32,
    pub username: String,
    pub password: String,
    pub admin_token: String,
    pub issued_tokens: Vec<String>,
    pub workers: Vec<Worker>,
    pub pools: Vec<Pool>,
    pub next_pool_id: u64,
    pub next_ip: u64,
}

impl PState {
    /// A fresh state with the given credentials.
    pub(crate) fn fresh(username: String, password: String, admin_token: String) -> Self {
        PState {
            format: FORMAT,
            username,
            password,
            admin_token,
            issued_tokens: Vec::new(),
            workers: Vec::new(),
            pools: Vec::new(),
            next_pool_id: 1,
            next_ip: 0,
        }
    }

    /// Whether `token` is the admin token or an issued one.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        !token.is_empty()
            && (ct_eq(token, &self.admin_token)
                || self.issued_tokens.iter().any(|t| ct_eq(t, token)))
    }

    /// Records a newly issued token, dropping the oldest beyond the cap.
    pub(crate) fn add_token(&mut self, token: String) {
        self.issued_tokens.push(token);
        if self.issued_tokens.len() > MAX_ISSUED_TOKENS {
            let excess = self.issued_tokens.len() - MAX_ISSUED_TOKENS;
            self.issued_tokens.drain(..excess);
        }
    }

    /// Allocates the next worker IP address (`10.0.x.y`, y in 2..=251).
    pub(crate) fn alloc_ip(&mut self) -> String {
        let n = self.next_ip;
        self.next_ip = self.next_ip.wrapping_add(1);
        format!("10.0.{}.{}", (n / 250) % 256, n % 250 + 2)
    }

    /// Settles every worker's phase.
    pub(crate) fn settle_all(&mut self, now_ms: u64, transition_ms: u64) {
        for w in &mut self.workers {
            w.settle(now_ms, transition_ms);
        }
    }
}

/// Length-independent-ish comparison that does not short-circuit on the first differing byte.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Loads the state file: `Ok(None)` if it does not exist, an error if it cannot be read or parsed.
pub(crate) fn load(path: &Path) -> Result<Option<PState>, SimError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SimError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let corrupt = |e| SimError::CorruptState {
        path: path.to_path_buf(),
        source: e,
    };
    let st = serde_json::from_slice::<PState>(&bytes).map_err(corrupt)?;
    if st.format != FORMAT {
        return Err(corrupt(<serde_json::Error as serde::de::Error>::custom(
            format!("unsupported state format {} (expected {FORMAT})", st.format),
        )));
    }
    Ok(Some(st))
}

/// Writes the state atomically: temp file in the same directory, fsync, rename, fsync the directory.
pub(crate) fn save(path: &Path, state: &PState) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.json".to_owned());
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        crate::util::random_hex(4)
    ));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename durable; not all platforms allow fsync on a directory.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(phase: Phase, since: u64) -> Worker {
        Worker {
            id: "wrk-00000000".into(),
            name: "n".into(),
            kind: "t".into(),
            image: "i".into(),
            region: "r".into(),
            network: "w".into(),
            ip: "10.0.0.2".into(),
            created_at: 0,
            phase,
            phase_since_ms: since,
        }
    }

    #[test]
    fn phases_settle_lazily() {
        let mut w = worker(Phase::Provisioning, 1000);
        w.settle(1500, 1000);
        assert_eq!(w.phase, Phase::Provisioning);
        w.settle(2000, 1000);
        assert_eq!(w.phase, Phase::Running);
        let mut w = worker(Phase::Stopping, 1000);
        w.settle(5000, 0);
        assert_eq!(w.phase, Phase::Stopped);
        // Clock going backwards never panics nor settles early.
        let mut w = worker(Phase::Rebooting, 10_000);
        w.settle(5, 1000);
        assert_eq!(w.phase, Phase::Rebooting);
    }

    #[test]
    fn ip_allocation() {
        let mut s = PState::fresh("a".into(), "b".into(), "c".into());
        assert_eq!(s.alloc_ip(), "10.0.0.2");
        s.next_ip = 250;
        assert_eq!(s.alloc_ip(), "10.0.1.2");
    }

    #[test]
    fn token_checks() {
        let mut s = PState::fresh("a".into(), "b".into(), "admin-tok".into());
        assert!(s.token_valid("admin-tok"));
        assert!(!s.token_valid(""));
        assert!(!s.token_valid("admin-to"));
        s.add_token("x".into());
        assert!(s.token_valid("x"));
    }
}
