// `cloudco-c`: the CloudCo cpi provider in C, with no SDK: the bindings are generated from
// `wit/provider.wit` by `wit-bindgen c` (see build.sh), which is all a language needs.
//
// The component ships its provider definition (`cloudco-c.json`: `providers/cloudco.json`
// renamed; build.sh turns it into definition.h), so cpi runs the actions from its targets and
// parse rules, and calls the component for:
//
// - `map-status`: the simulator's raw statuses (`rebooting` -> `starting`, ...);
// - `invoke` of `count_workers`, an action the definition does not have: runs
//   `cloudco-cli worker list --region R --output json` through the host's `run-command`
//   and counts the workers; a failure is classified by the host's `classify-error`.
//
// It asks to run only `cloudco-cli worker ...` and `cloudco-cli --version`.
//
// Ownership, as wit-bindgen's C bindings define it: arguments of an export belong to the
// export (freed here), and what it returns is freed by the bindings after the host read it,
// so every returned string is allocated (`provider_component_string_dup`).

// No <stdio.h>: nothing here prints (the sandbox shows guest output only in cpi's debug log),
// and without it the module imports nothing of WASI. wit-bindgen names the command output's
// fields `stdout_` and `stderr_`, clear of stdio's macros.
#include <stdlib.h>
#include <string.h>

#include "definition.h"
#include "provider_component.h"

typedef provider_component_string_t string_t;
typedef exports_cpi_provider_provider_error_t error_t;

static const char NAME[] = "cloudco-c";

// A string of the bindings holding a copy of `text`.
static string_t str(const char *text) {
    string_t s;
    provider_component_string_dup(&s, text);
    return s;
}

// `a`, `b` and `c` (any may be "") joined into one allocated string.
static char *join3(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *out = malloc(la + lb + lc + 1);
    if (out == NULL) abort();
    memcpy(out, a, la);
    memcpy(out + la, b, lb);
    memcpy(out + la + lb, c, lc + 1);
    return out;
}

// `n` in decimal, into `buf` (at least 24 bytes).
static const char *decimal(long long n, char *buf) {
    char *at = buf + 23;
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    *at = '\0';
    do {
        *--at = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (n < 0) *--at = '-';
    return at;
}

// A NUL-terminated copy of a bindings string.
static char *cstr(const string_t *s) {
    char *out = malloc(s->len + 1);
    if (out == NULL) abort();
    memcpy(out, s->ptr, s->len);
    out[s->len] = '\0';
    return out;
}

static bool equals(const string_t *s, const char *text) {
    size_t n = strlen(text);
    return s->len == n && memcmp(s->ptr, text, n) == 0;
}

// Sets `err` to an error of `category` saying `message`; returns false (the hook failed).
static bool fail(error_t *err, cpi_provider_types_error_category_t category, const char *message) {
    err->category = category;
    err->message = str(message);
    return false;
}

// A list of `n` strings, each a copy.
static provider_component_list_string_t strings(const char *const *items, size_t n) {
    provider_component_list_string_t list;
    list.len = n;
    list.ptr = n ? malloc(n * sizeof(string_t)) : NULL;
    for (size_t i = 0; i < n; i++) list.ptr[i] = str(items[i]);
    return list;
}

static cpi_provider_types_command_capability_t capability(const char *program, const char *const *args,
                                                         size_t n) {
    cpi_provider_types_command_capability_t c;
    c.program = str(program);
    c.args = strings(args, n);
    return c;
}

void exports_cpi_provider_provider_describe(exports_cpi_provider_provider_manifest_t *ret) {
    static const char *const worker[] = {"worker", "**"};
    static const char *const version[] = {"--version"};
    static const char *const invokes[] = {"count_workers"};
    memset(ret, 0, sizeof(*ret));
    ret->name = str(NAME);
    ret->version = str("0.1.0");
    ret->api_version = str("0.2.0");
    ret->commands.len = 2;
    ret->commands.ptr = malloc(2 * sizeof(cpi_provider_types_command_capability_t));
    ret->commands.ptr[0] = capability("cloudco-cli", worker, 2);
    ret->commands.ptr[1] = capability("cloudco-cli", version, 1);
    ret->provider_json.is_some = true;
    ret->provider_json.val = str(DEFINITION);
    ret->invokes = strings(invokes, 1);
    ret->maps_status = true;
    ret->env.len = 2;
    ret->env.ptr = malloc(2 * sizeof(cpi_provider_types_env_request_t));
    ret->env.ptr[0].name = str("CLOUDCO_API_URL");
    ret->env.ptr[0].description.is_some = true;
    ret->env.ptr[0].description.val = str("the CloudCo API cloudco-cli talks to");
    ret->env.ptr[1].name = str("CLOUDCO_API_KEY");
    ret->env.ptr[1].description.is_some = true;
    ret->env.ptr[1].description.val = str("cloudco-cli's API key");
}

bool exports_cpi_provider_provider_parse(string_t *action, string_t *raw, string_t *ret, error_t *err) {
    provider_component_string_free(action);
    provider_component_string_free(raw);
    return fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_UNSUPPORTED,
                "cloudco-c does not parse the output of an action");
}

exports_cpi_provider_provider_worker_status_t exports_cpi_provider_provider_map_status(string_t *raw) {
    static const struct {
        const char *raw;
        exports_cpi_provider_provider_worker_status_t status;
    } table[] = {
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
    exports_cpi_provider_provider_worker_status_t status = CPI_PROVIDER_TYPES_WORKER_STATUS_UNKNOWN;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (equals(raw, table[i].raw)) {
            status = table[i].status;
            break;
        }
    }
    provider_component_string_free(raw);
    return status;
}

// The value of `"key":"..."` in the flat JSON object of string parameters cpi passes (its
// own serializer: no spaces), still JSON-escaped; NULL when absent.
static char *param(const char *params, const char *key) {
    char *pattern = join3("\"", key, "\":\"");
    const char *start = strstr(params, pattern);
    size_t skip = strlen(pattern);
    free(pattern);
    if (start == NULL) return NULL;
    start += skip;
    const char *end = start;
    while (*end != '\0' && *end != '"') end += (*end == '\\' && end[1] != '\0') ? 2 : 1;
    if (*end != '"') return NULL;
    char *value = malloc((size_t)(end - start) + 1);
    if (value == NULL) abort();
    memcpy(value, start, (size_t)(end - start));
    value[end - start] = '\0';
    return value;
}

// Runs `cloudco-cli worker list --region REGION --output json`; its stdout, or false with
// `err` set (the host's error, or the failure classified by the host's rules).
static bool list_workers(const char *region, string_t *stdout_text, error_t *err) {
    static const char *const fixed[] = {"worker", "list", "--region", NULL, "--output", "json"};
    const char *args[6];
    memcpy(args, fixed, sizeof args);
    args[3] = region;
    cpi_provider_host_command_t cmd = {0};
    cmd.program = str("cloudco-cli");
    cmd.args = strings(args, 6);
    cpi_provider_host_command_output_t out;
    bool ok = cpi_provider_host_run_command(&cmd, &out, err);
    cpi_provider_host_command_free(&cmd);
    if (!ok) return false;
    if (out.exit_code != 0) {
        // What explains the failure: stderr, else stdout; its category by the host's rules.
        string_t *said = out.stderr_.len ? &out.stderr_ : &out.stdout_;
        cpi_provider_types_error_category_t category = cpi_provider_host_classify_error(said, NULL, NULL);
        char *text = cstr(said);
        if (strlen(text) > 2048) text[2048] = '\0';
        char status[24];
        char *head = join3("command 'cloudco-cli' exited with status ", decimal(out.exit_code, status), ": ");
        char *message = join3(head, text, "");
        fail(err, category, message);
        free(head);
        free(text);
        free(message);
        cpi_provider_host_command_output_free(&out);
        return false;
    }
    *stdout_text = out.stdout_;
    provider_component_string_free(&out.stderr_);
    return true;
}

bool exports_cpi_provider_provider_invoke(string_t *action, string_t *params, string_t *ret, error_t *err) {
    bool ok;
    char *text = cstr(params);
    char *region = NULL;
    if (!equals(action, "count_workers")) {
        ok = fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_UNSUPPORTED, "cloudco-c invokes only count_workers");
    } else if ((region = param(text, "region")) == NULL) {
        ok = fail(err, CPI_PROVIDER_TYPES_ERROR_CATEGORY_VALIDATION, "missing required parameter 'region'");
    } else {
        string_t listed;
        ok = list_workers(region, &listed, err);
        if (ok) {
            // One `"id":` per worker in cloudco-cli's JSON list.
            char *all = cstr(&listed);
            size_t count = 0;
            for (const char *at = all; (at = strstr(at, "\"id\":")) != NULL; at += 5) count++;
            char number[24];
            char *head = join3("{\"region\":\"", region, "\",\"count\":");
            char *json = join3(head, decimal((long long)count, number), "}");
            *ret = str(json);
            free(head);
            free(json);
            free(all);
            provider_component_string_free(&listed);
        }
    }
    free(region);
    free(text);
    provider_component_string_free(action);
    provider_component_string_free(params);
    return ok;
}
