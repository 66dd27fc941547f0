"""`cloudco-py`: the CloudCo cpi provider of examples/rust-cloudco, in Python.

Built into a WebAssembly component with componentize-py (see build.sh). The component ships
its provider definition (`cloudco-py.json`: the CloudCo actions with the same `cloudco-cli`
command targets as `providers/cloudco.json`), so cpi runs most actions itself, and hooks in:

- `parse`: `list_workers` output is read with `json.loads` (fields `id`, `name`, `status`,
  `type`, like the JSON provider);
- `invoke`: `get_worker` runs entirely here (`cloudco-cli worker describe ID --output json`
  through the host's `run-command`, returning `id`, `name`, `status`, `type`, `ip_address`),
  and `count_workers`, an action the definition does not have, counts a region's workers;
- `map_status`: the simulator's raw statuses (`rebooting` -> `starting`, ...);
- `invoke` of `fetch_workers`: lists the workers from the CloudCo API at `api_url` (default:
  `cpi sim`'s address), with `api_key` as the bearer token, over standard
  `wasi:http/outgoing-handler` with componentize-py's own helpers (`poll_loop.send`), which
  cpi sends through the same gate as every other request, under the grants.

It asks to run only `cloudco-cli worker ...` and `cloudco-cli --version`, and to reach only
`http://127.0.0.1:8787/instances` (the workers of the simulated cloud `cpi sim` serves).
"""

import asyncio
import json
import os
from urllib.parse import quote, urlsplit

import poll_loop
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import Fields, Method_Get, OutgoingRequest, Scheme_Http, Scheme_Https
from wit_world.imports.cpi_types import (
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

# The CloudCo API `fetch_workers` asks for by default, and the part of it it asks to reach.
API_URL = "http://127.0.0.1:8787"
API_PATH = "/instances"


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


def outgoing(url, headers):
    """A wasi:http `GET url` request with `headers` (the URL must be http or https)."""
    parts = urlsplit(url)
    schemes = {"http": Scheme_Http(), "https": Scheme_Https()}
    if parts.scheme not in schemes or not parts.netloc:
        raise fail(ErrorCategory.VALIDATION, f"not an http(s) URL: {url}")
    request = OutgoingRequest(Fields.from_list([(k, v.encode()) for k, v in headers]))
    request.set_method(Method_Get())
    request.set_scheme(schemes[parts.scheme])
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path + (f"?{parts.query}" if parts.query else ""))
    return request


async def get(url, headers):
    """`GET url` over wasi:http with componentize-py's `poll_loop.send`: status and body.

    A refused request (not granted, or redirected somewhere not granted) fails like any
    network error; cpi reports the run as the CapabilityDeniedError it is, whatever this
    code makes of it.
    """
    request = outgoing(url, headers)
    try:
        response = await poll_loop.send(request)
    except Err as e:
        raise fail(ErrorCategory.PROVIDER, f"GET {url} failed: {e.value}")
    body = bytearray()
    stream = poll_loop.Stream(response.consume())
    while (chunk := await stream.next()) is not None:
        body += chunk
    return response.status(), body.decode("utf-8", "replace")


async def fetch_workers(values):
    """`GET {api_url}/instances[?region=R]`: the workers' summaries, as JSON text."""
    base = values.get("api_url")
    if not isinstance(base, str) or not base:
        base = API_URL
    key = param(values, "api_key")
    region = values.get("region")
    query = f"?region={quote(region, safe='')}" if isinstance(region, str) and region else ""
    url = f"{base.rstrip('/')}{API_PATH}{query}"
    status, body = await get(url, [("authorization", f"Bearer {key}"),
                                   ("accept", "application/json")])
    if not 200 <= status < 300:
        said = f"GET {base}{API_PATH} returned HTTP {status}"
        # The category by cpi's own rules, from the status and the body.
        raise fail(host.classify_error(said, status, body), f"{said}: {body[:512]}")
    workers = load_json(body, "the API's worker list")
    if not isinstance(workers, list):
        raise fail(ErrorCategory.PROVIDER, "the API's worker list is not a JSON array")
    return json.dumps([summary(w, "API worker list") for w in workers])


def run(coroutine):
    """Runs `coroutine` to the end on componentize-py's wasi:io event loop."""
    loop = poll_loop.PollLoop()
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(coroutine)


class Provider(exports.Provider):
    def describe(self) -> Manifest:
        return Manifest(
            name=NAME,
            version=VERSION,
            api_version=API_VERSION,
            commands=[
                CommandCapability(program="cloudco-cli", args=["worker", "-**"]),
                CommandCapability(program="cloudco-cli", args=["--version"]),
            ],
            http=[API_URL + API_PATH],
            provider_json=DEFINITION,
            parses=["list_workers"],
            invokes=["get_worker", "count_workers", "fetch_workers"],
            maps_status=True,
            env=[
                EnvRequest(name="CLOUDCO_API_URL", description="the CloudCo API cloudco-cli talks to"),
                EnvRequest(name="CLOUDCO_API_KEY", description="cloudco-cli's API key"),
            ],
            parameters=[
                ParamDecl(name="worker_id", type=ParamType.STRING,
                          description="the worker's ID", pattern="[a-z0-9][a-z0-9-]*",
                          choices=[], min=None, max=None, secret=False),
                ParamDecl(name="api_key", type=ParamType.STRING,
                          description="fetch_workers: the CloudCo API token", pattern=None,
                          choices=[], min=None, max=None, secret=True),
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
        if action == "fetch_workers":
            return run(fetch_workers(values))
        raise fail(ErrorCategory.UNSUPPORTED, f"{NAME} does not invoke '{action}'")
