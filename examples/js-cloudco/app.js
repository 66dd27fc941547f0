// `cloudco-js`: the CloudCo cpi provider of examples/rust-cloudco, in JavaScript.
//
// Built into a WebAssembly component with ComponentizeJS (see build.mjs). The component ships
// its provider definition (`cloudco-js.json`: the CloudCo actions with the same `cloudco-cli`
// command targets as `providers/cloudco.json`; build.mjs inlines it as DEFINITION), so cpi
// runs most actions itself, and hooks in:
//
// - `parse`: `list_workers` output is read with `JSON.parse` (fields `id`, `name`, `status`,
//   `type`, like the JSON provider);
// - `invoke`: `get_worker` runs entirely here (`cloudco-cli worker describe ID --output json`
//   through the host's `run-command`, returning `id`, `name`, `status`, `type`,
//   `ip_address`), and `count_workers`, an action the definition does not have, counts a
//   region's workers;
// - `mapStatus`: the simulator's raw statuses (`rebooting` -> `starting`, ...);
// - `invoke` of `fetch_workers`: lists the workers with the platform's own `fetch()` (sent
//   through wasi:http, which cpi checks against the grants like every other request) from
//   the CloudCo API at `api_url` (default: `cpi sim`'s address), with `api_key` as the
//   bearer token.
//
// It asks to run only `cloudco-cli worker ...` and `cloudco-cli --version`, and to reach only
// `http://127.0.0.1:8787/instances` (the workers of the simulated cloud `cpi sim` serves).
//
// WIT mapping (ComponentizeJS / jco): records are objects with camelCase fields, enums are
// their kebab-case names as strings, `option<T>` is the value or `undefined`, and a hook that
// returns `result<T, error>` returns T or throws the `error` record.

import { runCommand, log, classifyError } from 'cpi:provider/host@0.2.0';

/* global DEFINITION */ // the provider definition's JSON text, inlined by build.mjs

const NAME = 'cloudco-js';
const VERSION = '0.1.0';
const API_VERSION = '0.2.0';

const STATUSES = new Map(Object.entries({
  provisioning: 'provisioning',
  pending: 'provisioning',
  creating: 'provisioning',
  running: 'running',
  starting: 'starting',
  rebooting: 'starting',
  stopping: 'stopping',
  stopped: 'stopped',
  terminating: 'terminating',
  deleting: 'terminating',
  error: 'error',
  failed: 'error',
  suspended: 'suspended',
}));

const SUMMARY_FIELDS = ['id', 'name', 'status', 'type'];

/** The CloudCo API `fetch_workers` asks for by default, and the part of it it asks to reach. */
const API_URL = 'http://127.0.0.1:8787';
const API_PATH = '/instances';

/** The value to throw for the hook's `error` result. */
function fail(category, message) {
  return { category, message };
}

/** Runs `cloudco-cli ARGS` through the host; stdout, or an error on a non-zero exit. */
function cli(...args) {
  let out;
  try {
    out = runCommand({ program: 'cloudco-cli', args, stdin: undefined, timeoutMs: undefined });
  } catch (e) {
    // A refused or failed run: the host's error record, passed on as is.
    throw e && Object.prototype.hasOwnProperty.call(e, 'payload') ? e.payload : e;
  }
  if (out.exitCode !== 0) {
    // What explains the failure: stderr, else stdout (marked), like the host says it.
    const stderr = out.stderr.trim();
    const stdout = out.stdout.trim();
    const text = stderr || stdout;
    const shown = stderr ? stderr.slice(0, 2048)
      : stdout ? `(stdout) ${stdout.slice(0, 2048)}` : '(no output)';
    const how = out.exitCode === -1 ? 'was killed by a signal' : `exited with status ${out.exitCode}`;
    // The category by cpi's own rules (the ones its JSON providers get), not a copy.
    throw fail(classifyError(text, undefined, undefined), `command 'cloudco-cli' ${how}: ${shown}`);
  }
  return out.stdout;
}

function loadJson(raw, what) {
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw fail('provider', `${what} is not JSON: ${e.message}`);
  }
}

/** The JSON provider's fields of one worker object (all required, all strings). */
function summary(obj, what) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw fail('provider', `${what}: expected an object, got ${JSON.stringify(obj)}`);
  }
  const out = {};
  for (const field of SUMMARY_FIELDS) {
    if (typeof obj[field] !== 'string') {
      throw fail('provider', `${what}: missing field \`${field}\``);
    }
    out[field] = obj[field];
  }
  return out;
}

/** `cloudco-cli worker list --output json`: a JSON array (blank output is an empty list). */
function parseList(raw) {
  if (!raw.trim()) return [];
  const workers = loadJson(raw, 'the worker list');
  if (!Array.isArray(workers)) throw fail('provider', 'the worker list is not a JSON array');
  return workers.map((w) => summary(w, 'worker list'));
}

/** `cloudco-cli worker describe ... --output json`: the summary plus `ip` if non-empty. */
function parseDescribe(raw) {
  const described = loadJson(raw, 'the worker description');
  const detail = summary(described, 'worker description');
  if (typeof described.ip === 'string' && described.ip) detail.ip_address = described.ip;
  return detail;
}

function param(params, name) {
  const value = params[name];
  if (typeof value !== 'string') {
    throw fail('validation', `missing required parameter '${name}'`);
  }
  return value;
}

/** The `worker_id` parameter, refused if it could be taken for a flag. */
function workerId(params) {
  const id = param(params, 'worker_id');
  if (!id || id.startsWith('-')) {
    throw fail('validation', `parameter 'worker_id' must be a worker ID, not ${JSON.stringify(id)}`);
  }
  return id;
}

/**
 * `GET {api_url}/instances[?region=R]` with `fetch()`: the workers' summaries. A refused
 * request (not granted, or redirected somewhere not granted) rejects like any network
 * failure; cpi reports it as the CapabilityDeniedError it is, whatever this code does.
 */
async function fetchWorkers(values) {
  const base = typeof values.api_url === 'string' && values.api_url ? values.api_url : API_URL;
  const key = param(values, 'api_key');
  const query = typeof values.region === 'string' && values.region
    ? `?region=${encodeURIComponent(values.region)}` : '';
  let response;
  try {
    response = await fetch(`${base.replace(/\/+$/, '')}${API_PATH}${query}`, {
      headers: { authorization: `Bearer ${key}`, accept: 'application/json' },
    });
  } catch (e) {
    throw fail('provider', `GET ${base}${API_PATH} failed: ${e && e.message ? e.message : e}`);
  }
  const body = await response.text();
  if (!response.ok) {
    const said = `GET ${base}${API_PATH} returned HTTP ${response.status}`;
    throw fail(classifyError(said, response.status, body), `${said}: ${body.slice(0, 512)}`);
  }
  const workers = loadJson(body, 'the API\'s worker list');
  if (!Array.isArray(workers)) throw fail('provider', 'the API\'s worker list is not a JSON array');
  return JSON.stringify(workers.map((w) => summary(w, 'API worker list')));
}

export const provider = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      apiVersion: API_VERSION,
      commands: [
        { program: 'cloudco-cli', args: ['worker', '-**'] },
        { program: 'cloudco-cli', args: ['--version'] },
      ],
      http: [`${API_URL}${API_PATH}`],
      providerJson: DEFINITION,
      parses: ['list_workers'],
      invokes: ['get_worker', 'count_workers', 'fetch_workers'],
      mapsStatus: true,
      env: [
        { name: 'CLOUDCO_API_URL', description: 'the CloudCo API cloudco-cli talks to' },
        { name: 'CLOUDCO_API_KEY', description: "cloudco-cli's API key" },
      ],
      parameters: [
        {
          name: 'worker_id', type: 'string', description: "the worker's ID",
          pattern: '[a-z0-9][a-z0-9-]*', choices: [], min: undefined, max: undefined, secret: false,
        },
        {
          name: 'api_key', type: 'string', description: 'fetch_workers: the CloudCo API token',
          pattern: undefined, choices: [], min: undefined, max: undefined, secret: true,
        },
      ],
    };
  },

  parse(action, raw) {
    if (action === 'list_workers') return JSON.stringify(parseList(raw));
    throw fail('unsupported', `${NAME} does not parse the output of '${action}'`);
  },

  mapStatus(raw) {
    return STATUSES.get(raw.trim().toLowerCase()) ?? 'unknown';
  },

  invoke(action, params) {
    const values = loadJson(params, 'the parameters');
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      throw fail('validation', 'the parameters are not a JSON object');
    }
    if (action === 'get_worker') {
      const args = ['worker', 'describe', workerId(values)];
      if (typeof values.region === 'string' && values.region) args.push('--region', values.region);
      args.push('--output', 'json');
      return JSON.stringify(parseDescribe(cli(...args)));
    }
    if (action === 'count_workers') {
      const region = param(values, 'region');
      const count = parseList(cli('worker', 'list', '--region', region, '--output', 'json')).length;
      log('debug', `${count} workers in ${region}`);
      return JSON.stringify({ region, count });
    }
    // A promise: ComponentizeJS runs the event loop until it settles.
    if (action === 'fetch_workers') return fetchWorkers(values);
    throw fail('unsupported', `${NAME} does not invoke '${action}'`);
  },
};
