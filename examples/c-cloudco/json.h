/* Just enough JSON for cloudco-c: read one string field of a flat object, and write strings
 * into a growing buffer. No allocation failure is survivable inside a component (the host
 * sees a trap), so `buf` aborts on one. */
#ifndef CLOUDCO_C_JSON_H
#define CLOUDCO_C_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* A growing byte buffer; `data` is NUL-terminated. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf;

void buf_bytes(buf *b, const char *s, size_t n);
void buf_str(buf *b, const char *s);
/* Appends the decimal digits of `v`. */
void buf_int(buf *b, long long v);
/* Appends `s` (n bytes of UTF-8) as a JSON string, quotes included. */
void buf_json_string(buf *b, const char *s, size_t n);

/* A string field found in JSON text: the bytes between its quotes, still escaped. */
typedef struct {
    const char *at;
    size_t len;
} json_raw;

/* Finds the string value of top-level-looking key `key` in `text` (n bytes). False when the
 * key is absent or its value is not a string. */
bool json_find_string(const char *text, size_t n, const char *key, json_raw *out);

/* Decodes an escaped JSON string into `out` (NUL-terminated, UTF-8). False when the escapes
 * are malformed or it holds a NUL. */
bool json_unescape(json_raw raw, buf *out);

#endif
