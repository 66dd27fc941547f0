/* `cloudco-c`: the CloudCo provider of examples/rust-cloudco, in C, from the WIT alone.
 *
 * No SDK: the bindings come from `wit-bindgen c` over wit/, and build.sh turns the module into
 * a component with `wasm-tools component new`. The component ships its provider definition
 * (cloudco-c.json, the CloudCo actions with the same `cloudco-cli` targets as
 * providers/cloudco.json), so cpi runs most actions itself, and it hooks in:
 *
 * - `parse`: `list_workers` output (a JSON array, one object a line) becomes `id`, `name`, `status`,
 *   `type` per worker, like the JSON provider;
 * - `invoke`: `get_worker` runs entirely here (`cloudco-cli worker describe ID --output json`
 *   through the host's `run-command`), and `count_workers` counts a region's workers;
 * - `map-status`: the simulator's raw statuses (`rebooting` -> `starting`, ...).
 *
 * It asks to run only `cloudco-cli worker ...` and `cloudco-cli --version`. A failed command
 * is reported as a provider error with the CLI's own words: cpi, not the guest, decides what
 * a message means, so no classification rules live here. */

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "provider_component.h"

#define NAME "cloudco-c"
#define VERSION "0.1.0"
#ifndef API_VERSION /* build.sh passes the WIT package version */
#error "build with -DAPI_VERSION=\"X.Y.Z\" (see build.sh)"
#endif

typedef provider_component_string_t str;
typedef exports_cpi_provider_provider_error_t guest_error;

/* The provider definition, generated from cloudco-c.json by build.sh. */
static const char DEFINITION[] =
#include "definition.inc"
    ;

/* ---- small helpers ------------------------------------------------------------------- */

/* A NUL-terminated copy of a WIT string (which is not NUL-terminated). */
static char *cstr(const str *s) {
    char *out = malloc(s->len + 1);
    if (!out) {
        abort();
    }
    memcpy(out, s->ptr, s->len);
    out[s->len] = '\0';
    return out;
}

/* Fills `err` with the message made of the NULL-terminated pieces and returns false, so a
 * hook can `return fail(...)`. (No printf: stdio would make the module import WASI files.) */
static bool fail(guest_error *err, int category, ...) {
    buf message = {0};
    va_list ap;
    va_start(ap, category);
    for (const char *piece; (piece = va_arg(ap, const char *)) != NULL;) {
        buf_str(&message, piece);
    }
    va_end(ap);
    err->category = (cpi_provider_types_error_category_t)category;
    err->message.ptr = (uint8_t *)message.data;
    err->message.len = message.len;
    return false;
}

/* A list of `n` heap-allocated copies of `items`. */
static provider_component_list_string_t strings(const char **items, size_t n) {
    provider_component_list_string_t list = {calloc(n ? n : 1, sizeof(str)), n};
    for (size_t i = 0; i < n; i++) {
        provider_component_string_dup(&list.ptr[i], items[i]);
    }
    return list;
}

/* Hands a finished buffer to the host as the hook's result (the bindings free it). */
static bool give(buf *b, str *ret) {
    ret->ptr = (uint8_t *)b->data;
    ret->len = b->len;
    return true;
}

/* ---- describe ------------------------------------------------------------------------ */

void exports_cpi_provider_provider_describe(exports_cpi_provider_provider_manifest_t *ret) {
    static const char *worker_args[] = {"worker", "-**"};
    static const char *version_args[] = {"--version"};
    static const char *parses[] = {"list_workers"};
    static const char *invokes[] = {"get_worker", "count_workers"};

    memset(ret, 0, sizeof *ret); /* fields this version does not set are empty */
    provider_component_string_dup(&ret->name, NAME);
    provider_component_string_dup(&ret->version, VERSION);
    provider_component_string_dup(&ret->api_version, API_VERSION);
    ret->commands.len = 2;
    ret->commands.ptr = calloc(2, sizeof *ret->commands.ptr);
    provider_component_string_dup(&ret->commands.ptr[0].program, "cloudco-cli");
    ret->commands.ptr[0].args = strings(worker_args, 2);
    provider_component_string_dup(&ret->commands.ptr[1].program, "cloudco-cli");
    ret->commands.ptr[1].args = strings(version_args, 1);
    ret->http = strings(NULL, 0);
    ret->provider_json.is_some = true;
    provider_component_string_dup(&ret->provider_json.val, DEFINITION);
    ret->parses = strings(parses, 1);
    ret->invokes = strings(invokes, 2);
    ret->maps_status = true;
}

/* ---- parse --------------------------------------------------------------------------- */

static const char *const SUMMARY_FIELDS[] = {"id", "name", "status", "type"};

/* Appends `"key":"value"` for a string field of `obj`; false when it is missing. */
static bool copy_field(buf *out, const char *obj, size_t n, const char *key, const char *as) {
    json_raw raw;
    buf value = {0};
    bool ok = json_find_string(obj, n, key, &raw) && json_unescape(raw, &value);
    if (ok) {
        buf_json_string(out, as, strlen(as));
        buf_str(out, ":");
        buf_json_string(out, value.data, value.len);
    }
    free(value.data);
    return ok;
}

/* One worker object's summary fields (`"id":…,"name":…,…`, no braces) appended to `out`. */
static bool summary(buf *out, const char *obj, size_t n, const char *what, guest_error *err) {
    for (size_t i = 0; i < 4; i++) {
        if (i) {
            buf_str(out, ",");
        }
        if (!copy_field(out, obj, n, SUMMARY_FIELDS[i], SUMMARY_FIELDS[i])) {
            return fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_PROVIDER, what,
                        ": missing field `", SUMMARY_FIELDS[i], "`", NULL);
        }
    }
    return true;
}

/* `cloudco-cli worker list --output json`: a JSON array written one worker object a line
 * (`[`, `  {...},`, `]`; blank output: no workers).
 * Appends the JSON array to `out` (when `out` is not NULL) and counts the workers. */
static bool parse_list(const char *raw, size_t n, buf *out, size_t *count, guest_error *err) {
    const char *p = raw, *end = raw + n;
    *count = 0;
    if (out) {
        buf_str(out, "[");
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *q = p;
        while (q < line_end && isspace((unsigned char)*q)) {
            q++;
        }
        if (q < line_end && (*q == '[' || *q == ']')) {
            q++; /* the array's brackets stand on lines of their own */
            while (q < line_end && isspace((unsigned char)*q)) {
                q++;
            }
        }
        if (q < line_end) {
            if (*q != '{') {
                return fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_PROVIDER,
                            "worker list: a line is not a JSON object", NULL);
            }
            buf scratch = {0};
            buf *into = out ? out : &scratch;
            if (out && *count) {
                buf_str(out, ",");
            }
            buf_str(into, "{");
            bool ok = summary(into, q, (size_t)(line_end - q), "worker list", err);
            buf_str(into, "}");
            free(scratch.data);
            if (!ok) {
                return false;
            }
            (*count)++;
        }
        p = nl ? nl + 1 : end;
    }
    if (out) {
        buf_str(out, "]");
    }
    return true;
}

bool exports_cpi_provider_provider_parse(str *action, str *raw, str *ret, guest_error *err) {
    char *name = cstr(action);
    bool ok;
    if (strcmp(name, "list_workers") == 0) {
        buf out = {0};
        size_t count;
        ok = parse_list((const char *)raw->ptr, raw->len, &out, &count, err);
        if (ok) {
            give(&out, ret);
        } else {
            free(out.data);
        }
    } else {
        ok = fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_UNSUPPORTED,
                  NAME " does not parse the output of '", name, "'", NULL);
    }
    free(name);
    provider_component_string_free(action);
    provider_component_string_free(raw);
    return ok;
}

/* ---- map-status ---------------------------------------------------------------------- */

static const struct {
    const char *raw;
    cpi_provider_types_worker_status_t status;
} STATUSES[] = {
    {"provisioning", CPI_PROVIDER_TYPES_WORKER_STATUS_PROVISIONING},
    {"pending", CPI_PROVIDER_TYPES_WORKER_STATUS_PROVISIONING},
    {"creating", CPI_PROVIDER_TYPES_WORKER_STATUS_PROVISIONING},
    {"running", CPI_PROVIDER_TYPES_WORKER_STATUS_RUNNING},
    {"starting", CPI_PROVIDER_TYPES_WORKER_STATUS_STARTING},
    {"rebooting", CPI_PROVIDER_TYPES_WORKER_STATUS_STARTING},
    {"stopping", CPI_PROVIDER_TYPES_WORKER_STATUS_STOPPING},
    {"stopped", CPI_PROVIDER_TYPES_WORKER_STATUS_STOPPED},
    {"terminating", CPI_PROVIDER_TYPES_WORKER_STATUS_TERMINATING},
    {"deleting", CPI_PROVIDER_TYPES_WORKER_STATUS_TERMINATING},
    {"error", CPI_PROVIDER_TYPES_WORKER_STATUS_ERROR},
    {"failed", CPI_PROVIDER_TYPES_WORKER_STATUS_ERROR},
    {"suspended", CPI_PROVIDER_TYPES_WORKER_STATUS_SUSPENDED},
};

exports_cpi_provider_provider_worker_status_t exports_cpi_provider_provider_map_status(str *raw) {
    const char *p = (const char *)raw->ptr, *end = p + raw->len;
    while (p < end && isspace((unsigned char)*p)) p++;
    while (end > p && isspace((unsigned char)end[-1])) end--;
    cpi_provider_types_worker_status_t status = CPI_PROVIDER_TYPES_WORKER_STATUS_UNKNOWN;
    for (size_t i = 0; i < sizeof STATUSES / sizeof STATUSES[0]; i++) {
        size_t n = strlen(STATUSES[i].raw);
        if ((size_t)(end - p) == n && strncasecmp(p, STATUSES[i].raw, n) == 0) {
            status = STATUSES[i].status;
            break;
        }
    }
    provider_component_string_free(raw);
    return status;
}

/* ---- invoke -------------------------------------------------------------------------- */

/* Runs `cloudco-cli ARGS` through the host: its stdout in `out`, or an error. */
static bool cli(const char **args, size_t n, buf *out, guest_error *err) {
    cpi_provider_host_command_t cmd = {0};
    provider_component_string_dup(&cmd.program, "cloudco-cli");
    cmd.args = strings(args, n);
    cpi_provider_host_command_output_t output = {0};
    cpi_provider_host_error_t denied = {0};
    bool ran = cpi_provider_host_run_command(&cmd, &output, &denied);
    cpi_provider_host_command_free(&cmd);
    if (!ran) {
        /* The host's own error (a denied command, a timeout): passed on as it is. */
        *err = denied;
        return false;
    }
    bool ok = output.exit_code == 0;
    if (ok) {
        buf_bytes(out, (const char *)output.stdout_.ptr, output.stdout_.len);
    } else {
        /* What explains the failure: stderr, else stdout (marked), as the host says it; its
         * category by the host's own rules (`classify-error`), not a copy of them. */
        str *text = output.stderr_.len ? &output.stderr_ : &output.stdout_;
        cpi_provider_host_error_category_t category =
            cpi_provider_host_classify_error(text, NULL, NULL);
        buf shown = {0}, status = {0};
        buf_bytes(&shown, (const char *)text->ptr, text->len < 2048 ? text->len : 2048);
        buf_int(&status, output.exit_code);
        fail(err, category,
             "command 'cloudco-cli' exited with status ", status.data, ": ",
             text == &output.stdout_ && text->len ? "(stdout) " : "",
             text->len ? shown.data : "(no output)", NULL);
        free(shown.data);
        free(status.data);
    }
    cpi_provider_host_command_output_free(&output);
    return ok;
}

/* A string parameter, unescaped into `out`; false when it is absent or not a string. */
static bool param(const str *params, const char *name, buf *out) {
    json_raw raw;
    return json_find_string((const char *)params->ptr, params->len, name, &raw) &&
           json_unescape(raw, out);
}

static bool get_worker(const str *params, buf *result, guest_error *err) {
    buf id = {0}, region = {0}, described = {0};
    bool ok = false;
    if (!param(params, "worker_id", &id)) {
        fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_VALIDATION,
             "missing required parameter 'worker_id'", NULL);
    } else if (id.len == 0 || id.data[0] == '-') {
        buf shown = {0};
        buf_json_string(&shown, id.data, id.len < 512 ? id.len : 512);
        fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_VALIDATION,
             "parameter 'worker_id' must be a worker ID, not ", shown.data, NULL);
        free(shown.data);
    } else {
        const char *args[7];
        size_t n = 0;
        args[n++] = "worker";
        args[n++] = "describe";
        args[n++] = id.data;
        if (param(params, "region", &region) && region.len) {
            args[n++] = "--region";
            args[n++] = region.data;
        }
        args[n++] = "--output";
        args[n++] = "json";
        ok = cli(args, n, &described, err);
        if (ok) {
            buf_str(result, "{");
            ok = summary(result, described.data, described.len, "worker description", err);
        }
        json_raw ip;
        if (ok && json_find_string(described.data, described.len, "ip", &ip) && ip.len) {
            /* `ip` becomes `ip_address` when it is a non-empty string. */
            buf value = {0};
            ok = json_unescape(ip, &value) ||
                 fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_PROVIDER,
                      "worker description: `ip` is not a valid JSON string", NULL);
            buf_str(result, ",\"ip_address\":");
            buf_json_string(result, value.data, value.len);
            free(value.data);
        }
        buf_str(result, "}");
    }
    free(id.data);
    free(region.data);
    free(described.data);
    return ok;
}

static bool count_workers(const str *params, buf *result, guest_error *err) {
    buf region = {0}, listed = {0};
    bool ok = false;
    if (!param(params, "region", &region)) {
        fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_VALIDATION,
             "missing required parameter 'region'", NULL);
    } else {
        const char *args[] = {"worker", "list", "--region", region.data, "--output", "json"};
        size_t count = 0;
        ok = cli(args, 6, &listed, err) && parse_list(listed.data, listed.len, NULL, &count, err);
        if (ok) {
            buf_str(result, "{\"region\":");
            buf_json_string(result, region.data, region.len);
            buf_str(result, ",\"count\":");
            buf_int(result, (long long)count);
            buf_str(result, "}");
            buf message = {0};
            buf_int(&message, (long long)count);
            buf_str(&message, " workers");
            str log = {(uint8_t *)message.data, message.len};
            cpi_provider_host_log(CPI_PROVIDER_HOST_LOG_LEVEL_DEBUG, &log);
            free(message.data);
        }
    }
    free(region.data);
    free(listed.data);
    return ok;
}

bool exports_cpi_provider_provider_invoke(str *action, str *params, str *ret, guest_error *err) {
    char *name = cstr(action);
    buf result = {0};
    bool ok;
    if (strcmp(name, "get_worker") == 0) {
        ok = get_worker(params, &result, err);
    } else if (strcmp(name, "count_workers") == 0) {
        ok = count_workers(params, &result, err);
    } else {
        ok = fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_UNSUPPORTED,
                  NAME " does not invoke '", name, "'", NULL);
    }
    if (ok) {
        give(&result, ret);
    } else {
        free(result.data);
    }
    free(name);
    provider_component_string_free(action);
    provider_component_string_free(params);
    return ok;
}
