/* libFuzzer target: purge body building and local URL checks (src/purge.c).
 * The input is a list of URLs (length-prefixed, any bytes). An independent
 * oracle says which URL is refused and why; an accepted list must produce
 * exactly {"Urls":[...]} whose strings a strict JSON decoder turns back into
 * the input URLs byte for byte. */
#include "fuzz_input.h"
#include "fuzz_strict.h"
#include "purge.h"

#include <strings.h>

#define MAXU 64

static unsigned cp_at(const unsigned char *p, size_t len)
{
    static const unsigned char lead_mask[5] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
    unsigned cp = p[0] & lead_mask[len];
    size_t k;
    for (k = 1; k < len; k++) cp = cp << 6 | (p[k] & 0x3F);
    return cp;
}

static int is_space(unsigned cp)
{
    static const unsigned spaces[] = { 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029,
                                       0x202F, 0x205F, 0x3000 };
    size_t k;
    if (cp >= 0x2000 && cp <= 0x200A) return 1;
    for (k = 0; k < sizeof spaces / sizeof spaces[0]; k++)
        if (spaces[k] == cp) return 1;
    return 0;
}

/* What the URL check must answer, and where. */
static int expected_problem(const unsigned char *p, size_t n, size_t *at)
{
    size_t i, len, host;
    *at = first_invalid(p, n);
    if (*at != n) return ECDN_URL_UTF8;
    for (i = 0; i < n; i += len) {
        unsigned cp;
        len = wf_len(p + i, n - i);
        cp = cp_at(p + i, len);
        *at = i;
        if (is_space(cp)) return ECDN_URL_SPACE;
        if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F)) return ECDN_URL_CONTROL;
    }
    *at = 0;
    /* The scheme is case-insensitive (RFC 3986), as the service treats it. */
    if (n >= 8 && strncasecmp((const char *)p, "https://", 8) == 0) host = 8;
    else if (n >= 7 && strncasecmp((const char *)p, "http://", 7) == 0) host = 7;
    else return ECDN_URL_SCHEME;
    for (i = host; i < n && !strchr("/?#", p[i]); i++)
        if (p[i] == '*') { *at = i; return ECDN_URL_WILDCARD; }
    {
        /* host = the authority after its last '@', less a ":port" outside brackets */
        size_t a = host, e = i, k;
        for (k = host; k < e; k++) if (p[k] == '@') a = k + 1;
        {
            size_t last_colon = e, last_bracket = a;
            int seen_bracket = 0;
            for (k = a; k < e; k++) {
                if (p[k] == ':') last_colon = k;
                if (p[k] == ']') { last_bracket = k; seen_bracket = 1; }
            }
            if (last_colon < e && (!seen_bracket || last_colon > last_bracket)) e = last_colon;
        }
        if (e == a || (e - a == 2 && p[a] == '[' && p[a + 1] == ']')) { *at = host; return ECDN_URL_NO_HOST; }
    }
    return ECDN_URL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    void *owned[MAXU];
    ecdn_str urls[MAXU];
    size_t n = 0, i, index = 99, at = 99, want_at = 0, want_index = 0;
    int rc, want = ECDN_URL_OK;
    ecdn_buf b;

    while (in.n > 0 && n < MAXU) {
        urls[n] = fuzz_field(&in, &owned[n]);
        n++;
    }
    for (i = 0; i < n; i++) {
        size_t a1, a2;
        int p1 = ecdn_url_check(urls[i].ptr, urls[i].len, &a1);
        int p2 = expected_problem((const unsigned char *)urls[i].ptr, urls[i].len, &a2);
        FUZZ_CHECK(p1 == p2 && a1 == a2);
        FUZZ_CHECK(ecdn_url_problem_text(p1) != NULL && ecdn_url_problem_name(p1) != NULL);
        if (p2 != ECDN_URL_OK && want == ECDN_URL_OK) { want = p2; want_index = i; want_at = a2; }
    }
    if (n == 0) want = ECDN_URL_EMPTY_LIST;

    ecdn_buf_init(&b);
    rc = ecdn_purge_body(&b, urls, n, &index, &at);
    FUZZ_CHECK(rc == want);
    if (rc != ECDN_URL_OK) {
        FUZZ_CHECK(b.len == 0 && !b.failed); /* a refused list writes nothing */
        if (n) FUZZ_CHECK(index == want_index && at == want_at);
    } else {
        const unsigned char *s = (const unsigned char *)b.data;
        unsigned char *dec = (unsigned char *)malloc(b.len);
        size_t pos = 9;
        FUZZ_CHECK(dec != NULL && b.data[b.len] == '\0');
        FUZZ_CHECK(first_invalid(s, b.len) == b.len);
        FUZZ_CHECK(b.len >= 11 && memcmp(s, "{\"Urls\":[", 9) == 0);
        for (i = 0; i < n; i++) {
            long dn;
            if (i) { FUZZ_CHECK(pos < b.len && s[pos] == ','); pos++; }
            dn = json_decode_at(s, b.len, &pos, dec);
            FUZZ_CHECK(dn >= 0 && (size_t)dn == urls[i].len && memcmp(dec, urls[i].ptr, urls[i].len) == 0);
        }
        FUZZ_CHECK(b.len - pos == 2 && memcmp(s + pos, "]}", 2) == 0);
        free(dec);
    }
    ecdn_buf_free(&b);
    for (i = 0; i < n; i++) free(owned[i]);
    return 0;
}
