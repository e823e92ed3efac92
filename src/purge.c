#include "purge.h"
#include "json.h"

#include <string.h>

static int is_unicode_space(unsigned cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Decodes the code point at p[i] (already known to be valid UTF-8). */
static unsigned decode(const unsigned char *p, size_t i, size_t *len)
{
    unsigned c = p[i];
    if (c < 0x80) { *len = 1; return c; }
    if (c < 0xE0) { *len = 2; return ((c & 0x1F) << 6) | (p[i + 1] & 0x3F); }
    if (c < 0xF0) {
        *len = 3;
        return ((c & 0x0F) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3F);
    }
    *len = 4;
    return ((c & 0x07) << 18) | ((p[i + 1] & 0x3Fu) << 12) | ((p[i + 2] & 0x3Fu) << 6) | (p[i + 3] & 0x3F);
}

/* s has at least strlen(lower) bytes; lower is lower-case ASCII. */
static int prefix_nocase(const char *s, const char *lower)
{
    for (; *lower; s++, lower++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != *lower) return 0;
    }
    return 1;
}

static size_t host_length(const char *a, size_t n);

int ecdn_url_check(const char *s, size_t n, size_t *at)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i, len, start, end;

    *at = ecdn_utf8_invalid_at(s, n);
    if (*at != n) return ECDN_URL_UTF8;
    /* Whitespace first: a stray blank is the common mistake, report it as such. */
    for (i = 0; i < n; i += len) {
        unsigned cp = decode(p, i, &len);
        *at = i;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || is_unicode_space(cp)) return ECDN_URL_SPACE;
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return ECDN_URL_CONTROL;
    }
    *at = 0;
    /* Schemes are case-insensitive (RFC 3986), as the service treats them. */
    if (n >= 7 && prefix_nocase(s, "http://")) start = 7;
    else if (n >= 8 && prefix_nocase(s, "https://")) start = 8;
    else return ECDN_URL_SCHEME;
    for (end = start; end < n && s[end] != '/' && s[end] != '?' && s[end] != '#'; end++) {
        if (s[end] == '*') {
            *at = end;
            return ECDN_URL_WILDCARD;
        }
    }
    if (host_length(s + start, end - start) == 0) {
        *at = start;
        return ECDN_URL_NO_HOST;
    }
    return ECDN_URL_OK;
}

/* The host inside an authority "[userinfo@]host[:port]": what is left after
 * the last '@' and without a trailing ":port" (an IPv6 literal keeps its
 * colons inside the brackets). */
static size_t host_length(const char *a, size_t n)
{
    size_t i, colon = n;
    for (i = n; i > 0; i--) {
        if (a[i - 1] == '@') {
            a += i;
            n -= i;
            colon = n;
            break;
        }
    }
    for (i = n; i > 0; i--) {
        if (a[i - 1] == ']') break;
        if (a[i - 1] == ':') { colon = i - 1; break; }
    }
    if (colon < n) n = colon;
    return (n == 2 && a[0] == '[' && a[1] == ']') ? 0 : n; /* "[]" names no host */
}

static const struct {
    const char *name, *text;
} PROBLEMS[] = {
    { "ok", "is valid" },
    { "empty_list", "no URLs given" },
    { "not_string", "is not a string" },
    { "scheme", "does not start with http:// or https://" },
    { "no_host", "has no host" },
    { "space", "contains whitespace" },
    { "control", "contains a control character" },
    { "utf8", "is not valid UTF-8" },
    { "wildcard", "has a wildcard host" },
    { "nomem", "out of memory" },
};

const char *ecdn_url_problem_text(int problem)
{
    if (problem < 0 || (size_t)problem >= sizeof PROBLEMS / sizeof PROBLEMS[0]) return "is invalid";
    return PROBLEMS[problem].text;
}

const char *ecdn_url_problem_name(int problem)
{
    if (problem < 0 || (size_t)problem >= sizeof PROBLEMS / sizeof PROBLEMS[0]) return "invalid";
    return PROBLEMS[problem].name;
}

int ecdn_list_body(ecdn_buf *b, const char *field, const ecdn_str *items, size_t n, const char *tail,
                   size_t *index, size_t *at)
{
    size_t i;
    int problem;

    *index = 0;
    *at = 0;
    if (n == 0) return ECDN_URL_EMPTY_LIST;
    /* Check everything before writing, so a refused list leaves b untouched. */
    for (i = 0; i < n; i++) {
        problem = ecdn_url_check(items[i].ptr ? items[i].ptr : "", items[i].ptr ? items[i].len : 0, at);
        if (problem != ECDN_URL_OK) {
            *index = i;
            return problem;
        }
    }
    *at = 0;
    ecdn_buf_adds(b, "{\"");
    ecdn_buf_adds(b, field);
    ecdn_buf_adds(b, "\":[");
    for (i = 0; i < n; i++) {
        if (i) ecdn_buf_addc(b, ',');
        if (ecdn_json_add_string(b, items[i].ptr, items[i].len) != 0 && !b->failed) {
            *index = i; /* cannot happen after the check above; kept for safety */
            return ECDN_URL_UTF8;
        }
    }
    ecdn_buf_addc(b, ']');
    if (tail) ecdn_buf_adds(b, tail);
    ecdn_buf_addc(b, '}');
    return b->failed ? ECDN_URL_NOMEM : ECDN_URL_OK;
}

int ecdn_purge_body(ecdn_buf *b, const ecdn_str *urls, size_t n, size_t *index, size_t *at)
{
    return ecdn_list_body(b, "Urls", urls, n, NULL, index, at);
}
