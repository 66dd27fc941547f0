//! Whole-process figures for the rows of issue 15's table ("fast paths"), each printed as
//! ours, the reference, their ratio and the goal; with `BEFORE=path/to/older/cpi`, that
//! binary is measured in the same run, interleaved, so the two columns share the machine's
//! load.
//!
//! - `cpi parse` of 100,000 `VBoxManage list vms` lines with two regex fields, against the
//!   floor: this very binary re-run as a program that only reads the file and runs the same
//!   two regexes on each line (goal: at most 1.5× the floor, peak RSS ≤ 20 MB, flat in the
//!   number of records);
//! - `cpi run` of an action whose command is `true`, against `true` alone (goal: +1 ms);
//! - `cpi --version` (time and page faults), against `cloudco-cli --version` (goal ≤ 1.2 ms);
//! - `cpi run cloudco list_workers`, against `cloudco-cli worker list` alone, both talking to
//!   the simulated cloud (goal ≤ 1.3×);
//! - `cpi serve` answering `truenas list_workers` to 50 connections: its own CPU per request
//!   (goal ≤ 20 µs) and its throughput against the simulator's own for the same requests.
//!
//! Run (release binaries; BIN overrides target/release, RUNS the rounds, default 15, ONLY one
//! row: parse, true, version, cloudco or serve):
//!
//! ```sh
//! cargo build --release -p cpi-cli -p cpi-sim
//! BEFORE=/tmp/cpi-main cargo bench -p cpi --bench fast_paths
//! cargo build --profile dist -p cpi-cli && BEFORE=target/dist/cpi BEFORE_LABEL=dist ONLY=version cargo bench -p cpi --bench fast_paths
//! ```
//!
//! `PROFILE=dir` also records the serve row's `cpi serve` with `perf record` into
//! `dir/serve-LABEL.data` (`perf report -i …`); its CPU figure then includes perf's overhead.
//!
//! Figures are medians of interleaved whole processes (wall time from spawn to exit, peak RSS
//! and page faults from `wait4`). Everything runs in a temporary HOME.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One row of the table: measures and prints.
type Row = fn(&Bench);

/// The two regexes of the parse row, as the provider file below spells them.
const NAME_RE: &str = r#"^"(.+)" \{"#;
const ID_RE: &str = r"\{([0-9a-fA-F-]{36})\}$";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--floor") {
        floor(Path::new(&args[at + 1]));
        return;
    }
    let bench = Bench::new();
    // ONLY=parse|true|version|cloudco|serve runs one row.
    let only = std::env::var("ONLY").unwrap_or_default();
    let rows: [(&str, Row); 5] = [
        ("parse", Bench::parse_rows),
        ("true", Bench::run_true_row),
        ("version", Bench::version_row),
        ("cloudco", Bench::cloudco_row),
        ("serve", Bench::serve_row),
    ];
    for (name, row) in rows {
        if only.is_empty() || only == name {
            row(&bench);
        }
    }
}

/// The floor of the parse row: read the file, run both regexes on every line, print a count.
fn floor(file: &Path) {
    let text = std::fs::read_to_string(file).expect("read the input");
    let build = |re: &str| {
        regex::RegexBuilder::new(re)
            .multi_line(true)
            .build()
            .expect("regex")
    };
    let (name, id) = (build(NAME_RE), build(ID_RE));
    let (mut name_locs, mut id_locs) = (name.capture_locations(), id.capture_locations());
    let mut found = 0usize;
    for line in text.split('\n') {
        let a = name.captures_read(&mut name_locs, line).is_some();
        let b = id.captures_read(&mut id_locs, line).is_some();
        if a && b {
            found += name_locs.get(1).map_or(0, |(s, e)| e - s) + id_locs.get(1).map_or(0, |_| 1);
        }
    }
    println!("{found}");
}

/// One whole-process measurement.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    /// User plus system CPU time: what the process itself spent, whatever the machine's load.
    cpu: Duration,
    max_rss_kb: i64,
    faults: i64,
}

/// The binaries, the scratch directory and the environment every process gets.
struct Bench {
    cpi: PathBuf,
    before: Option<PathBuf>,
    /// BEFORE_LABEL: what the BEFORE binary is, when not an older build (a release option).
    before_label: &'static str,
    cloudco_cli: PathBuf,
    tmp: tempfile::TempDir,
    runs: usize,
}

impl Bench {
    fn new() -> Bench {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = std::env::var_os("BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release"));
        let cpi = bin.join("cpi");
        let cloudco_cli = bin.join("cloudco-cli");
        for exe in [&cpi, &cloudco_cli] {
            assert!(
                exe.is_file(),
                "missing {}: cargo build --release -p cpi-cli -p cpi-sim",
                exe.display()
            );
        }
        let before = std::env::var_os("BEFORE").map(PathBuf::from);
        let runs = std::env::var("RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(15);
        let tmp = tempfile::tempdir().expect("temp dir");
        for dir in ["home", "providers"] {
            std::fs::create_dir_all(tmp.path().join(dir)).expect("mkdir");
        }
        let label = std::env::var("BEFORE_LABEL").unwrap_or_else(|_| "before".into());
        let bench = Bench {
            cpi,
            before,
            before_label: label.leak(),
            cloudco_cli,
            tmp,
            runs,
        };
        bench.write_providers();
        bench
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A command with the bench's HOME and nothing of the caller's configuration.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        let home = self.path("home");
        // `cpi run cloudco` runs `cloudco-cli`: the one beside the measured `cpi`.
        let bin = self.cloudco_cli.parent().map(Path::to_path_buf);
        let path = std::env::join_paths(bin.into_iter().chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .expect("PATH");
        cmd.args(args)
            .env("PATH", path)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env_remove("CPI_LOG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// The `cpi` binaries measured: (label, path).
    fn cpis(&self) -> Vec<(&'static str, PathBuf)> {
        let mut list = vec![("after", self.cpi.clone())];
        if let Some(before) = &self.before {
            list.insert(0, (self.before_label, before.clone()));
        }
        list
    }

    fn write_providers(&self) {
        let vbox = r#"{"name": "vboxlist", "type": "command", "actions": {"list_workers": {
            "target": {"Command": "VBoxManage list vms"},
            "parse_rules": {"type": "array", "patterns": {
                "name": {"regex": "^\"(.+)\" \\{"},
                "id": {"regex": "\\{([0-9a-fA-F-]{36})\\}$"}}}}}}"#;
        let floor = r#"{"name": "floor", "type": "command", "actions": {"test_install": {
            "target": {"Command": "true"}}}}"#;
        std::fs::write(self.path("providers/vboxlist.json"), vbox).expect("write");
        std::fs::write(self.path("providers/floor.json"), floor).expect("write");
        for (_, cpi) in self.cpis() {
            let status = self
                .command(&cpi, &["--provider-dir"])
                .arg(self.path("providers"))
                .args(["grant", "floor", "--yes"])
                .status()
                .expect("cpi grant");
            assert!(status.success(), "cpi grant floor --yes");
        }
    }

    /// `n` lines of `VBoxManage list vms`.
    fn vms_file(&self, n: usize) -> PathBuf {
        let path = self.path(&format!("vms-{n}.txt"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = format!("{x:016x}{:016x}", x.rotate_left(29));
            writeln!(
                out,
                "\"vm-{i:06}\" {{{}-{}-{}-{}-{}}}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
            .expect("write");
        }
        out.flush().expect("flush");
        path
    }

    /// Runs each command once per round, interleaved, and returns each one's samples.
    fn measure(&self, commands: &mut [Command]) -> Vec<Vec<Sample>> {
        let mut samples = vec![Vec::new(); commands.len()];
        for cmd in commands.iter_mut() {
            // Warm-up (page cache, compile cache), and a check that it does what is measured.
            let done = cmd.stderr(Stdio::piped()).output().expect("spawn");
            let stderr = String::from_utf8_lossy(&done.stderr);
            assert!(
                done.status.success(),
                "{cmd:?} failed: {}\n{stderr}",
                done.status
            );
            cmd.stderr(Stdio::null());
        }
        for _ in 0..self.runs {
            for (cmd, out) in commands.iter_mut().zip(&mut samples) {
                out.push(run_once(cmd));
            }
        }
        samples
    }

    fn parse_rows(&self) {
        let file = self.vms_file(100_000);
        let mut commands: Vec<Command> = self
            .cpis()
            .iter()
            .map(|(_, cpi)| self.parse_command(cpi, &file))
            .collect();
        let me = std::env::current_exe().expect("this binary");
        let mut floor = self.command(&me, &["--floor"]);
        floor.arg(&file);
        commands.push(floor);
        let samples = self.measure(&mut commands);
        let reference = median(&samples[samples.len() - 1]);
        heading("`cpi parse` of 100,000 VBoxManage `list vms` lines, two regex fields");
        for ((label, _), s) in self.cpis().iter().zip(&samples) {
            let ours = median(s);
            row(label, ours, reference, "≤ 1.5× the floor, ≤ 20 MB");
        }
        row("floor (reference)", reference, reference, "");
        // Flat memory: peak RSS against the number of records.
        heading("peak RSS of `cpi parse` by number of records (flat: the input's own size only)");
        for n in [10_000, 50_000, 100_000] {
            let file = self.vms_file(n);
            let mut commands: Vec<Command> = self
                .cpis()
                .iter()
                .map(|(_, cpi)| self.parse_command(cpi, &file))
                .collect();
            let samples = self.measure(&mut commands[..]);
            for ((label, _), s) in self.cpis().iter().zip(&samples) {
                let m = median(s);
                println!(
                    "  {n:>7} records, {label:<6} {:>9.1} ms wall {:>7.1} ms CPU {:>7.1} MB",
                    ms(m.wall),
                    ms(m.cpu),
                    mb(m.max_rss_kb)
                );
            }
        }
    }

    fn parse_command(&self, cpi: &Path, file: &Path) -> Command {
        let mut cmd = self.command(cpi, &["--json", "--provider-dir"]);
        cmd.arg(self.path("providers"))
            .args(["parse", "vboxlist", "list_workers", "--input"])
            .arg(file);
        cmd
    }

    fn run_true_row(&self) {
        let mut commands: Vec<Command> = self
            .cpis()
            .iter()
            .map(|(_, cpi)| {
                let mut cmd = self.command(cpi, &["--json", "--provider-dir"]);
                cmd.arg(self.path("providers"))
                    .args(["run", "floor", "test_install"]);
                cmd
            })
            .collect();
        commands.push(self.command(Path::new("true"), &[]));
        let samples = self.measure(&mut commands);
        let reference = median(&samples[samples.len() - 1]);
        heading("`cpi run` of an action whose command is `true`, against `true` alone");
        for ((label, _), s) in self.cpis().iter().zip(&samples) {
            let ours = median(s);
            row(label, ours, reference, "≤ +1 ms over `true`");
            println!(
                "  {:<22} {:>+9.2} ms wall, {:>+9.2} ms CPU over `true`",
                "",
                ms(ours.wall) - ms(reference.wall),
                ms(ours.cpu) - ms(reference.cpu)
            );
        }
        row("true (reference)", reference, reference, "");
    }

    fn version_row(&self) {
        let mut commands: Vec<Command> = self
            .cpis()
            .iter()
            .map(|(_, cpi)| self.command(cpi, &["--version"]))
            .collect();
        commands.push(self.command(&self.cloudco_cli, &["--version"]));
        let samples = self.measure(&mut commands);
        let reference = median(&samples[samples.len() - 1]);
        heading("`cpi --version`, against `cloudco-cli --version`");
        for ((label, path), s) in self.cpis().iter().zip(&samples) {
            let ours = median(s);
            row(label, ours, reference, "≤ 1.2 ms");
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            println!(
                "  {:<22} {:>9} page faults, binary {:.1} MB",
                "",
                ours.faults,
                size as f64 / 1e6
            );
        }
        row("cloudco-cli (reference)", reference, reference, "");
        println!("  {:<22} {:>9} page faults", "", reference.faults);
    }

    fn cloudco_row(&self) {
        let Some((mut sim, url, token)) = self.start_sim() else {
            println!("\n(skipped `cpi run cloudco list_workers`: the simulator did not start)");
            return;
        };
        let with_env = |mut cmd: Command| {
            cmd.env("CLOUDCO_API_URL", &url)
                .env("CLOUDCO_API_KEY", &token);
            cmd
        };
        for i in 0..3 {
            let name = format!("name=bench-{i}");
            let mut cmd = with_env(self.command(&self.cpi, &["run", "cloudco", "create_worker"]));
            cmd.args(["-p", &name]);
            let _ = cmd.status();
        }
        let mut commands: Vec<Command> = self
            .cpis()
            .iter()
            .map(|(_, cpi)| {
                with_env(self.command(cpi, &["--json", "run", "cloudco", "list_workers"]))
            })
            .collect();
        commands.push(with_env(
            self.command(&self.cloudco_cli, &["worker", "list", "--output", "json"]),
        ));
        let samples = self.measure(&mut commands);
        let _ = sim.kill();
        let _ = sim.wait();
        let reference = median(&samples[samples.len() - 1]);
        heading("`cpi run cloudco list_workers`, against `cloudco-cli worker list` alone");
        for ((label, _), s) in self.cpis().iter().zip(&samples) {
            row(label, median(s), reference, "≤ 1.3×");
        }
        row("cloudco-cli (reference)", reference, reference, "");
    }

    fn serve_row(&self) {
        let Some((mut sim, url, token)) = self.start_sim() else {
            println!("\n(skipped `cpi serve`: the simulator did not start)");
            return;
        };
        let config = self.path("home/.config/cpi");
        std::fs::create_dir_all(&config).expect("mkdir");
        let toml =
            format!("[providers.truenas]\napi_url = \"{url}/api/v2.0\"\napi_key = \"{token}\"\n");
        std::fs::write(config.join("cpi.toml"), toml).expect("write cpi.toml");
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(config.join("cpi.toml"), private).expect("chmod");
        let body = r#"{"provider": "truenas", "action": "list_workers"}"#;
        // Every server runs at once; rounds alternate between them (and the simulator
        // answering directly), so they share the machine's load; medians are printed.
        let mut servers = Vec::new();
        for (label, cpi) in self.cpis() {
            match self.start_serve(label, &cpi) {
                Some((child, run, bearer)) => servers.push((label, child, run, bearer)),
                None => println!("  ({label}: cpi serve did not start)"),
            }
        }
        let sim_dataset = format!("{url}/api/v2.0/pool/dataset");
        let rounds = (self.runs / 3).max(3);
        let mut served: Vec<Vec<(f64, f64)>> = vec![Vec::new(); servers.len()];
        let mut direct: Vec<(f64, f64)> = Vec::new();
        for (_, _, run, bearer) in &servers {
            load(run, bearer, Some(body)); // warm-up
        }
        for _ in 0..rounds {
            for (i, (label, child, run, bearer)) in servers.iter().enumerate() {
                let profiler = profile(child.id(), label);
                let cpu = process_cpu(child.id());
                let through = load(run, bearer, Some(body));
                let spent = process_cpu(child.id()) - cpu;
                stop_profile(profiler);
                served[i].push(per_request(&through, spent));
            }
            let cpu = process_cpu(sim.id());
            let through = load(&sim_dataset, &token, None);
            direct.push(per_request(&through, process_cpu(sim.id()) - cpu));
        }
        heading_serve();
        let direct = median_pair(&mut direct);
        for ((label, mut child, _, _), mut figures) in servers.into_iter().zip(served) {
            let (rate, cpu) = median_pair(&mut figures);
            println!(
                "  {label:<22} {rate:>9.0} req/s {:>8.2}× {cpu:>9.1} µs CPU per request  (goal ≤ 20 µs)",
                rate / direct.0
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        println!(
            "  {:<22} {:>9.0} req/s {:>19.1} µs CPU per request  (the simulator answering the same requests itself)",
            "simulator direct", direct.0, direct.1
        );
        let _ = sim.kill();
        let _ = sim.wait();
    }

    /// `cpi serve --concurrency 50` on a free port: the child, its run URL and its token.
    fn start_serve(
        &self,
        label: &str,
        cpi: &Path,
    ) -> Option<(std::process::Child, String, String)> {
        let port = free_port();
        let token_file = self.path(&format!("serve-{label}.token"));
        let mut cmd = self.command(cpi, &["serve", "--concurrency", "50", "--addr"]);
        cmd.arg(format!("127.0.0.1:{port}"))
            .arg("--token-file")
            .arg(&token_file);
        let mut child = cmd.spawn().expect("cpi serve");
        let ready = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            token_file.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        let bearer = std::fs::read_to_string(&token_file).expect("token");
        let run = format!("http://127.0.0.1:{port}/v1/run");
        Some((child, run, bearer.trim().to_string()))
    }

    /// `cpi sim` on a free loopback port: the child, its URL and its token.
    fn start_sim(&self) -> Option<(std::process::Child, String, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = self.command(&self.cpi, &["sim", "--addr"]);
        // Its output goes to a file: a pipe nobody reads any more would end it.
        let log = self.path("sim.out");
        cmd.arg(format!("127.0.0.1:{port}"))
            .arg("--state")
            .arg(self.path("sim.json"))
            .stdout(std::fs::File::create(&log).ok()?);
        let mut child = cmd.spawn().ok()?;
        for _ in 0..100 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("api token:").nth(1)
                && let Some(token) = rest.split_whitespace().next()
            {
                return Some((child, url, token.to_string()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

/// Requests made by [`load`] and the time they took.
struct Throughput {
    requests: usize,
    elapsed: Duration,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// 50 connections, 100 requests each (a POST of `body`, or a GET), every answer checked.
fn load(url: &str, token: &str, body: Option<&str>) -> Throughput {
    const CLIENTS: usize = 50;
    const EACH: usize = 100;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::new();
                for _ in 0..EACH {
                    let request = match body {
                        Some(body) => client.post(url).body(body.to_string()),
                        None => client.get(url),
                    };
                    let answer = request.bearer_auth(token).send().expect("request");
                    assert!(answer.status().is_success(), "{url}: {}", answer.status());
                    let _ = answer.bytes();
                }
            });
        }
    });
    Throughput {
        requests: CLIENTS * EACH,
        elapsed: started.elapsed(),
    }
}

/// With `PROFILE=dir`, `perf record` of process `pid` into `dir/serve-LABEL.data` (DWARF
/// call graphs: release builds keep no frame pointers) while the load runs.
fn profile(pid: u32, label: &str) -> Option<std::process::Child> {
    let dir = PathBuf::from(std::env::var_os("PROFILE")?);
    let out = dir.join(format!("serve-{label}.data"));
    let child = Command::new("perf")
        .args(["record", "-F", "4000", "--call-graph", "dwarf,16384", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    println!("  (profiling into {})", out.display());
    Some(child)
}

/// Ends a `perf record` started by [`profile`] (SIGINT, so it writes its file).
fn stop_profile(profiler: Option<std::process::Child>) {
    if let Some(mut child) = profiler {
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
    }
}

/// User plus system CPU time of a running process, from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // utime and stime are fields 14 and 15, the 12th and 13th after the command name.
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn heading_serve() {
    println!("\n`cpi serve`, `truenas list_workers`, 50 connections × 100 requests, medians");
}

/// Requests per second and CPU µs per request of one load.
fn per_request(through: &Throughput, cpu: Duration) -> (f64, f64) {
    (
        through.per_second(),
        cpu.as_secs_f64() * 1e6 / through.requests as f64,
    )
}

/// The medians of (requests per second, CPU µs per request) figures.
fn median_pair(figures: &mut [(f64, f64)]) -> (f64, f64) {
    let mid = figures.len() / 2;
    figures.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rate = figures[mid].0;
    figures.sort_by(|a, b| a.1.total_cmp(&b.1));
    (rate, figures[mid].1)
}

/// Spawns `cmd` and waits for it with `wait4`, for its peak RSS and page faults.
fn run_once(cmd: &mut Command) -> Sample {
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4");
    std::mem::forget(child); // reaped above
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Sample {
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
        faults: usage.ru_minflt + usage.ru_majflt,
    }
}

fn median(samples: &[Sample]) -> Sample {
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort();
    let mut cpus: Vec<Duration> = samples.iter().map(|s| s.cpu).collect();
    cpus.sort();
    let mut rss: Vec<i64> = samples.iter().map(|s| s.max_rss_kb).collect();
    rss.sort();
    let mut faults: Vec<i64> = samples.iter().map(|s| s.faults).collect();
    faults.sort();
    let mid = samples.len() / 2;
    Sample {
        wall: walls[mid],
        cpu: cpus[mid],
        max_rss_kb: rss[mid],
        faults: faults[mid],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(kb: i64) -> f64 {
    kb as f64 / 1024.0
}

fn heading(what: &str) {
    println!("\n{what}");
    println!(
        "  {:<22} {:>12} {:>9} {:>12} {:>9} {:>10}  goal",
        "", "wall", "vs ref", "CPU", "vs ref", "peak RSS"
    );
}

/// One line: wall and CPU medians, each against the reference's, peak RSS and the goal.
fn row(label: &str, ours: Sample, reference: Sample, goal: &str) {
    println!(
        "  {label:<22} {:>9.2} ms {:>8.2}× {:>9.2} ms {:>8.2}× {:>7.1} MB  {goal}",
        ms(ours.wall),
        ms(ours.wall) / ms(reference.wall),
        ms(ours.cpu),
        ms(ours.cpu) / ms(reference.cpu),
        mb(ours.max_rss_kb),
    );
}
