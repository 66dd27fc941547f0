#include "json.h"

#include <stdlib.h>
#include <string.h>

static void reserve(buf *b, size_t more) {
    if (b->len + more + 1 <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        abort();
    }
    b->data = data;
    b->cap = cap;
}

void buf_bytes(buf *b, const char *s, size_t n) {
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_str(buf *b, const char *s) { buf_bytes(b, s, strlen(s)); }

void buf_int(buf *b, long long v) {
    char digits[24];
    size_t i = sizeof digits;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        digits[--i] = '-';
    }
    buf_bytes(b, digits + i, sizeof digits - i);
}

void buf_json_string(buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    buf_bytes(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_bytes(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_bytes(b, esc, 6);
        } else {
            buf_bytes(b, (const char *)&s[i], 1);
        }
    }
    buf_bytes(b, "\"", 1);
}

/* The end of the JSON string starting after its opening quote at `p`, or NULL. */
static const char *string_end(const char *p, const char *end) {
    while (p < end) {
        if (*p == '\\') {
            p += 2;
        } else if (*p == '"') {
            return p;
        } else {
            p++;
        }
    }
    return NULL;
}

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

bool json_find_string(const char *text, size_t n, const char *key, json_raw *out) {
    const char *end = text + n;
    size_t klen = strlen(key);
    const char *p = text;
    /* Walk string by string, so a key's name inside another value never matches. */
    while ((p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        const char *start = p + 1;
        const char *close = string_end(start, end);
        if (!close) {
            return false;
        }
        const char *after = skip_space(close + 1, end);
        bool is_key = after < end && *after == ':';
        if (is_key && (size_t)(close - start) == klen && memcmp(start, key, klen) == 0) {
            const char *v = skip_space(after + 1, end);
            if (v >= end || *v != '"') {
                return false;
            }
            const char *vend = string_end(v + 1, end);
            if (!vend) {
                return false;
            }
            out->at = v + 1;
            out->len = (size_t)(vend - (v + 1));
            return true;
        }
        p = close + 1;
    }
    return false;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_u16(const char *p, const char *end, unsigned *out) {
    if (end - p < 4) {
        return false;
    }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) {
            return false;
        }
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return true;
}

static void put_utf8(buf *out, unsigned cp) {
    char s[4];
    size_t n;
    if (cp < 0x80) {
        s[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (char)(0xc0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (char)(0xe0 | (cp >> 12));
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        s[0] = (char)(0xf0 | (cp >> 18));
        s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_bytes(out, s, n);
}

bool json_unescape(json_raw raw, buf *out) {
    const char *p = raw.at;
    const char *end = raw.at + raw.len;
    buf_bytes(out, "", 0);
    while (p < end) {
        char c = *p++;
        if (c != '\\') {
            buf_bytes(out, &c, 1);
            continue;
        }
        if (p >= end) {
            return false;
        }
        char e = *p++;
        static const char escapes[] = "\"\\/bfnrt";
        static const char decoded[] = "\"\\/\b\f\n\r\t";
        const char *simple = e != '\0' ? strchr(escapes, e) : NULL;
        if (simple) {
            buf_bytes(out, &decoded[simple - escapes], 1);
            continue;
        }
        unsigned cp;
        if (e != 'u' || !read_u16(p, end, &cp)) {
            return false;
        }
        p += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
            unsigned lo;
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !read_u16(p + 2, end, &lo) ||
                lo < 0xdc00 || lo >= 0xe000) {
                return false;
            }
            p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            return false;
        }
        if (cp == 0) {
            return false;
        }
        put_utf8(out, cp);
    }
    return true;
}
