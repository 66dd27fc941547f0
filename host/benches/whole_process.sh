#!/usr/bin/env bash
# Whole-process benchmark: `cpi run NAME list_workers` through the JSON provider
# (providers/cloudco.json) and through each example component, as real processes side by
# side against the simulated cloud, with a warm compile cache.
#
#   cargo build --release -p cpi-cli -p cpi-sim
#   cargo build --release --target wasm32-wasip2 -p cpi-example-rust-cloudco
#   host/benches/whole_process.sh            # 30 rounds; RUNS=50 for more
#
# The Python, JavaScript and C components are taken from target/guests/ (built by the e2e
# tests `python_component_runs_like_its_json_provider`, `js_component_runs_like_its_json_provider`
# and `c_component_built_from_the_wit_alone_runs_like_its_json_provider`); a missing one is
# skipped. BIN=dir overrides target/release (cpi and cloudco-cli).
# BEFORE=path/to/an/older/cpi adds that binary's JSON provider run (`cloudco@before`) to the
# same interleaved rounds, for a before/after comparison under the same load; the bare
# `cloudco-cli worker list` (`cloudco-cli`) is always measured as the floor. The per-row
# figures of issue 15 (parse, `true`, --version, serve) are host/benches/fast_paths.rs.
#
# Everything runs in a temporary HOME (grants, compile cache, sim state). Runs are interleaved
# (one of each provider per round) so machine load affects them all alike; one warm-up run per
# provider fills the compile cache first. The components are copied a few seconds before, so
# that cpi can remember their digests: the steady state of an installed provider. Prints mean,
# median and min per provider, and the ratio and difference of the means to the JSON provider.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-$repo/target/release}
runs=${RUNS:-30}
port=${PORT:-18999}

for exe in cpi cloudco-cli; do
    [[ -x $bin/$exe ]] || { echo "missing $bin/$exe: cargo build --release -p cpi-cli -p cpi-sim" >&2; exit 2; }
done

tmp=$(mktemp -d)
sim_pid=
cleanup() {
    if [[ -n $sim_pid ]]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config XDG_CACHE_HOME=$tmp/home/.cache \
    XDG_DATA_HOME=$tmp/home/.local/share PATH=$bin:$PATH
unset CPI_LOG RUST_LOG
mkdir -p "$HOME" "$tmp/providers"
cd "$tmp"

"$bin/cpi" sim --addr "127.0.0.1:$port" --state "$tmp/sim.json" --transition-ms 100 >"$tmp/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do
    grep -q 'api token' "$tmp/sim.out" 2>/dev/null && break
    sleep 0.05
done
token=$(sed -n 's/.*api token: *\([^ ]*\).*/\1/p' "$tmp/sim.out")
[[ -n $token ]] || { cat "$tmp/sim.out" >&2; exit 1; }
export CLOUDCO_API_URL=http://127.0.0.1:$port CLOUDCO_API_KEY=$token

cp "$repo/providers/cloudco.json" "$tmp/providers/"
names=(cloudco)
add() { # name file
    if [[ -f $2 ]]; then
        cp "$2" "$tmp/providers/$1.wasm"
        "$bin/cpi" --provider-dir "$tmp/providers" grant "$1" --all \
            --env CLOUDCO_API_URL --env CLOUDCO_API_KEY >/dev/null
        names+=("$1")
    else
        echo "skipping $1: no $2" >&2
    fi
}
add cloudco-wasm "$repo/target/wasm32-wasip2/release/cpi_example_rust_cloudco.wasm"
add cloudco-py "$repo/target/guests/cloudco-py.wasm"
add cloudco-js "$repo/target/guests/cloudco-js.wasm"
add cloudco-c "$repo/target/guests/cloudco-c.wasm"

# cpi remembers a component's sha256 only once the file has been left unchanged for a few
# seconds (host/sandbox/src/cache.rs); until then each run reads and hashes it.
sleep 3
for i in 1 2 3; do
    "$bin/cpi" --provider-dir "$tmp/providers" run cloudco create_worker -p "name=bench-$i" >/dev/null
done

[[ -n ${BEFORE:-} ]] && names+=("cloudco@before")
names+=("cloudco-cli")
python3 - "$bin/cpi" "$tmp/providers" "$runs" "${BEFORE:-}" "${names[@]}" <<'EOF'
import statistics, subprocess, sys, time

cpi, pdir, runs, before, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]

def argv(name):
    if name == "cloudco-cli":
        return ["cloudco-cli", "worker", "list", "--output", "json"]
    if name == "cloudco@before":
        return [before, "--provider-dir", pdir, "run", "cloudco", "list_workers", "--json"]
    return [cpi, "--provider-dir", pdir, "run", name, "list_workers", "--json"]

def run(name):
    started = time.perf_counter()
    done = subprocess.run(argv(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"cpi run {name} list_workers failed ({done.returncode}):\n{done.stderr.decode()}")
    return elapsed * 1000

for name in names:  # warm-up: fills the compile cache
    run(name)
times = {name: [] for name in names}
for _ in range(runs):
    for name in names:
        times[name].append(run(name))

base = statistics.mean(times["cloudco"])
print(f"`cpi run NAME list_workers`, {runs} runs each, interleaved, warm compile cache")
print(f"{'provider':<14} {'mean ms':>8} {'median':>8} {'min':>8} {'vs JSON':>8} {'+ms':>7}")
for name in names:
    t = times[name]
    mean = statistics.mean(t)
    print(f"{name:<14} {mean:8.1f} {statistics.median(t):8.1f} {min(t):8.1f} "
          f"{mean / base:7.2f}x {mean - base:+7.1f}")
EOF
