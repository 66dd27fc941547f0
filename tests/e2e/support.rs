//! The test world: a simulated cloud on loopback, a temp home, and the `cpi` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cpi_sim::{Sim, SimConfig};
use serde_json::Value;

/// Every provider shipped in `providers/`, sorted.
pub const SHIPPED_PROVIDERS: [&str; 11] = [
    "aws-ec2",
    "azure",
    "cloudco",
    "digitalocean",
    "docker",
    "gce",
    "hetzner",
    "libvirt",
    "proxmox",
    "truenas",
    "virtualbox",
];

/// The repository root (providers/, tests/fixtures/ live here).
pub fn repo() -> PathBuf {
    // The e2e tests belong to host/cli (they need its `cpi` binary).
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/cli is two levels below the repository")
        .to_path_buf()
}

/// The `cpi` binary under test.
pub fn cpi_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cpi"))
}

/// A running simulator plus an isolated home directory for one test.
pub struct World {
    pub sim: Option<Sim>,
    rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    url: String,
    token: String,
}

/// A finished `cpi` process.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as JSON (panics with the output when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts success and returns the JSON result.
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.code, 0,
            "cpi failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.json()
    }

    /// Asserts failure with the given §10 code and exit code; returns the error object.
    pub fn err(&self, code: &str) -> Value {
        assert_ne!(
            self.code, 0,
            "expected {code}, cpi succeeded: {}",
            self.stdout
        );
        let json = self.json();
        assert_eq!(
            json["error"]["code"], code,
            "wrong category: {json}\nstderr: {}",
            self.stderr
        );
        json["error"].clone()
    }

    /// Asserts success; returns stdout as text.
    pub fn ok_text(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "cpi failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Everything the process printed.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl World {
    /// A world whose workers change state after 100 ms.
    pub fn new() -> World {
        World::with(|_| {})
    }

    /// A world with a customized simulator configuration.
    pub fn with(configure: impl FnOnce(&mut SimConfig)) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        std::os::unix::fs::symlink(cpi_bin(), bin.join("cloudco-cli"))
            .expect("symlink cloudco-cli");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut cfg = SimConfig::new(dir.path().join("state.json"));
        cfg.transition = Duration::from_millis(100);
        configure(&mut cfg);
        let sim = rt.block_on(Sim::start(cfg)).expect("simulator starts");
        let (url, token) = (sim.url(), sim.token().to_string());
        World {
            sim: Some(sim),
            rt,
            dir,
            bin,
            url,
            token,
        }
    }

    /// Approves providers found in `provider_dir` (`cpi --provider-dir DIR grant --yes ...`).
    pub fn approve(&self, provider_dir: &str, names: &[&str]) {
        self.cpi(
            &[
                &["--provider-dir", provider_dir, "grant", "--yes"][..],
                names,
            ]
            .concat(),
        )
        .ok_text();
    }

    /// The simulator's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The simulator's admin token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `-p api_url=... -p api_key=...` for the truenas provider.
    pub fn truenas_args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            format!("api_url={}/api/v2.0", self.url),
            "-p".into(),
            format!("api_key={}", self.token),
        ]
    }

    /// A `cpi` command with an isolated environment: the built-in providers (the repo's
    /// `providers/`, compiled in), the simulator's cloudco-cli on PATH, no user config.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(cpi_bin());
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("CLOUDCO_API_URL", &self.url)
            .env("CLOUDCO_API_KEY", &self.token)
            .env("CLOUDCO_CONFIG_DIR", self.dir.path().join("cloudco"))
            .stdin(Stdio::null());
        cmd
    }

    /// `cpi run truenas ACTION --json` against the simulator, plus `extra` arguments.
    pub fn truenas(&self, action: &str, extra: &[&str]) -> Run {
        let mut args: Vec<String> = vec![
            "run".into(),
            "truenas".into(),
            action.into(),
            "--json".into(),
        ];
        args.extend(self.truenas_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        self.cpi(&args)
    }

    /// Runs `cpi ARGS...` and waits for it.
    pub fn cpi<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        run(self.command().args(args))
    }

    /// Blocking HTTP GET on the simulator with the admin token.
    pub fn get(&self, path: &str) -> Value {
        let client = reqwest::blocking::Client::new();
        let resp = client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .expect("GET");
        resp.json().expect("JSON body")
    }

    /// Sets the simulator's fault switches (`PUT /_sim/faults`).
    pub fn set_faults(&self, faults: Value) {
        let client = reqwest::blocking::Client::new();
        let resp = client
            .put(format!("{}/_sim/faults", self.url))
            .bearer_auth(&self.token)
            .json(&faults)
            .send()
            .expect("PUT faults");
        assert!(
            resp.status().is_success(),
            "faults not set: {}",
            resp.status()
        );
    }

    /// The simulator's request log (`GET /_sim/requests`).
    pub fn requests(&self) -> Value {
        self.get("/_sim/requests")
    }

    /// Stops the simulator (for tests of a dead server).
    pub fn stop_sim(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_sim();
    }
}

/// Runs a prepared command to completion.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("cpi runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Whether a real platform CLI `program` can run here. When it cannot: with `CI` set (where
/// `.ci/run` installs it) the test fails, otherwise it prints `SKIPPED: ...` and the caller
/// returns.
pub fn real_cli_available(program: &str, install_hint: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file()
                && std::fs::metadata(&candidate).is_ok_and(|m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                })
        })
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed, and CI is set: .ci/run must install it ({install_hint})"
        );
        eprintln!("SKIPPED: {program} not found ({install_hint})");
    }
    found
}

/// A finished process plus what it cost.
#[derive(Debug)]
pub struct Measured {
    /// What it printed and its exit code (-1 when it was killed).
    pub run: Run,
    /// Its peak resident memory in KiB (`ru_maxrss`, or the last `VmHWM` seen when killed).
    pub peak_kib: u64,
    /// Why it was killed, when it was: over the time or memory budget.
    pub killed: Option<String>,
}

/// Runs a prepared command, killing it when it outlives `limit` or its resident memory passes
/// `max_kib`: a hostile file must neither hang cpi nor balloon it, and a regression must fail
/// the test without taking the machine's memory with it.
// The child is reaped with `wait4`, which also returns its peak memory; clippy cannot see that.
#[allow(clippy::zombie_processes)]
pub fn run_watched(cmd: &mut Command, limit: Duration, max_kib: u64) -> Measured {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cpi starts");
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = pipe(Box::new(child.stdout.take().expect("stdout")));
    let stderr = pipe(Box::new(child.stderr.take().expect("stderr")));
    let pid = child.id() as libc::pid_t;
    let started = std::time::Instant::now();
    let mut peak_kib = 0;
    let mut killed = None;
    let (status, usage) = loop {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid out-pointers.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break (status, usage);
        }
        peak_kib = peak_kib.max(vm_hwm_kib(pid));
        if killed.is_none() && started.elapsed() > limit {
            killed = Some(format!("still running after {limit:?}"));
        } else if killed.is_none() && peak_kib > max_kib {
            killed = Some(format!("resident memory {peak_kib} KiB over {max_kib} KiB"));
        }
        if killed.is_some() {
            // SAFETY: signalling our own, not yet reaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Measured {
        run: Run {
            code,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        },
        peak_kib: peak_kib.max(u64::try_from(usage.ru_maxrss).unwrap_or(0)),
        killed,
    }
}

/// A running process's peak resident set (`VmHWM` in `/proc/PID/status`), 0 when unknown.
fn vm_hwm_kib(pid: libc::pid_t) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
