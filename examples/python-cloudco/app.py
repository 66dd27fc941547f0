"""`cloudco-py`: the CloudCo cpi provider of examples/rust-cloudco, in Python.

Built into a WebAssembly component with componentize-py (see build.sh). The component ships
its provider definition (`cloudco-py.json`: the CloudCo actions with the same `cloudco-cli`
command targets as `providers/cloudco.json`), so cpi runs most actions itself, and hooks in:

- `parse`: `list_workers` output is read with `json.loads` (fields `id`, `name`, `status`,
  `type`, like the JSON provider);
- `invoke`: `get_worker` runs entirely here (`cloudco-cli worker describe ID --output json`
  through the host's `run-command`, returning `id`, `name`, `status`, `type`, `ip_address`),
  and `count_workers`, an action the definition does not have, counts a region's workers;
- `map_status`: the simulator's raw statuses (`rebooting` -> `starting`, ...).

It asks to run only `cloudco-cli worker ...` and `cloudco-cli --version`.
"""

import json
import os

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    CommandCapability,
    EnvRequest,
    ErrorCategory,
    Error,
    Manifest,
    ParamDecl,
    ParamType,
    WorkerStatus,
)

NAME = "cloudco-py"
VERSION = "0.1.0"
API_VERSION = "0.2.0"

# Read when componentize-py pre-initializes the module (at build time), so the definition is
# part of the component's memory snapshot: the sandbox has no files at run time.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), NAME + ".json")) as f:
    DEFINITION = f.read()

STATUSES = {
    "provisioning": WorkerStatus.PROVISIONING,
    "pending": WorkerStatus.PROVISIONING,
    "creating": WorkerStatus.PROVISIONING,
    "running": WorkerStatus.RUNNING,
    "starting": WorkerStatus.STARTING,
    "rebooting": WorkerStatus.STARTING,
    "stopping": WorkerStatus.STOPPING,
    "stopped": WorkerStatus.STOPPED,
    "terminating": WorkerStatus.TERMINATING,
    "deleting": WorkerStatus.TERMINATING,
    "error": WorkerStatus.ERROR,
    "failed": WorkerStatus.ERROR,
    "suspended": WorkerStatus.SUSPENDED,
}

SUMMARY_FIELDS = ("id", "name", "status", "type")


def fail(category, message):
    """The exception componentize-py turns into the hook's `error` result."""
    return Err(Error(category=category, message=message))


def cli(*args):
    """Runs `cloudco-cli ARGS` through the host; stdout, or an error on a non-zero exit."""
    out = host.run_command(host.Command(program="cloudco-cli", args=list(args), stdin=None,
                                        timeout_ms=None))
    if out.exit_code != 0:
        # What explains the failure: stderr, else stdout (marked), like the host says it.
        stderr, stdout = out.stderr.strip(), out.stdout.strip()
        text = stderr or stdout
        shown = (stderr[:2048] if stderr
                 else f"(stdout) {stdout[:2048]}" if stdout else "(no output)")
        how = ("was killed by a signal" if out.exit_code == -1
               else f"exited with status {out.exit_code}")
        # The category by cpi's own rules (the ones its JSON providers get), not a copy.
        category = host.classify_error(text, None, None)
        raise fail(category, f"command 'cloudco-cli' {how}: {shown}")
    return out.stdout


def load_json(raw, what):
    try:
        return json.loads(raw)
    except ValueError as e:
        raise fail(ErrorCategory.PROVIDER, f"{what} is not JSON: {e}")


def summary(obj, what):
    """The JSON provider's fields of one worker object (all required, all strings)."""
    if not isinstance(obj, dict):
        raise fail(ErrorCategory.PROVIDER, f"{what}: expected an object, got {obj!r}")
    out = {}
    for field in SUMMARY_FIELDS:
        value = obj.get(field)
        if not isinstance(value, str):
            raise fail(ErrorCategory.PROVIDER, f"{what}: missing field `{field}`")
        out[field] = value
    return out


def parse_list(raw):
    """`cloudco-cli worker list --output json`: a JSON array (blank output is an empty list)."""
    if not raw.strip():
        return []
    workers = load_json(raw, "the worker list")
    if not isinstance(workers, list):
        raise fail(ErrorCategory.PROVIDER, "the worker list is not a JSON array")
    return [summary(w, "worker list") for w in workers]


def parse_describe(raw):
    """`cloudco-cli worker describe ... --output json`: the summary plus `ip` if non-empty."""
    described = load_json(raw, "the worker description")
    detail = summary(described, "worker description")
    ip = described.get("ip")
    if isinstance(ip, str) and ip:
        detail["ip_address"] = ip
    return detail


def param(params, name):
    value = params.get(name)
    if not isinstance(value, str):
        raise fail(ErrorCategory.VALIDATION, f"missing required parameter '{name}'")
    return value


def worker_id(params):
    """The `worker_id` parameter, refused if it could be taken for a flag."""
    wid = param(params, "worker_id")
    if not wid or wid.startswith("-"):
        raise fail(ErrorCategory.VALIDATION,
                   f"parameter 'worker_id' must be a worker ID, not {json.dumps(wid)}")
    return wid


class Provider(exports.Provider):
    def describe(self) -> Manifest:
        return Manifest(
            name=NAME,
            version=VERSION,
            api_version=API_VERSION,
            commands=[
                CommandCapability(program="cloudco-cli", args=["worker", "**"]),
                CommandCapability(program="cloudco-cli", args=["--version"]),
            ],
            http=[],
            provider_json=DEFINITION,
            parses=["list_workers"],
            invokes=["get_worker", "count_workers"],
            maps_status=True,
            env=[
                EnvRequest(name="CLOUDCO_API_URL", description="the CloudCo API cloudco-cli talks to"),
                EnvRequest(name="CLOUDCO_API_KEY", description="cloudco-cli's API key"),
            ],
            parameters=[
                ParamDecl(name="worker_id", type=ParamType.STRING,
                          description="the worker's ID", pattern="[a-z0-9][a-z0-9-]*",
                          choices=[], min=None, max=None, secret=False),
            ],
        )

    def parse(self, action: str, raw: str) -> str:
        if action == "list_workers":
            return json.dumps(parse_list(raw))
        raise fail(ErrorCategory.UNSUPPORTED, f"{NAME} does not parse the output of '{action}'")

    def map_status(self, raw: str) -> WorkerStatus:
        return STATUSES.get(raw.strip().lower(), WorkerStatus.UNKNOWN)

    def invoke(self, action: str, params: str) -> str:
        values = load_json(params, "the parameters")
        if not isinstance(values, dict):
            raise fail(ErrorCategory.VALIDATION, "the parameters are not a JSON object")
        if action == "get_worker":
            args = ["worker", "describe", worker_id(values)]
            region = values.get("region")
            if isinstance(region, str) and region:
                args += ["--region", region]
            args += ["--output", "json"]
            return json.dumps(parse_describe(cli(*args)))
        if action == "count_workers":
            region = param(values, "region")
            count = len(parse_list(cli("worker", "list", "--region", region, "--output", "json")))
            host.log(host.LogLevel.DEBUG, f"{count} workers in {region}")
            return json.dumps({"region": region, "count": count})
        raise fail(ErrorCategory.UNSUPPORTED, f"{NAME} does not invoke '{action}'")
