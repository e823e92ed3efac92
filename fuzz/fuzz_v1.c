/* libFuzzer target: the v1 signer and its RFC 3986 query encoder. A field
 * oracle predicts acceptance; for an accepted request the query is decoded
 * back and must give exactly the sorted parameters (caller's and common ones)
 * plus Signature, and the signature is recomputed independently. */
#define _POSIX_C_SOURCE 200809L
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz_input.h"
#include "sign.h"

#define MAXP 48

enum { F_ID, F_KEY, F_HOST, F_ACTION, F_VERSION, F_METHOD, F_PATH, F_REGION, F_TOKEN, F_SIGM, NF };

static int eq(ecdn_str a, const char *b) { return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0; }

static int name_cmp(ecdn_str a, ecdn_str b)
{
    size_t n = a.len < b.len ? a.len : b.len, i;
    for (i = 0; i < n; i++)
        if (a.ptr[i] != b.ptr[i]) return (unsigned char)a.ptr[i] < (unsigned char)b.ptr[i] ? -1 : 1;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1; /* lower-case hex is not what the encoder promises */
}

/* Percent-decodes q[0..n) into out (room for n bytes); returns the length or -1. */
static long pct_decode(const char *q, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3) return -1;
            hi = hexval((unsigned char)q[i + 1]);
            lo = hexval((unsigned char)q[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (unsigned char)(hi * 16 + lo);
            /* Must not have been left raw: the encoder escapes only what it must. */
            if (unreserved(c)) return -1;
            out[o++] = (char)c;
            i += 2;
        } else {
            if (!unreserved(c)) return -1;
            out[o++] = (char)c;
        }
    }
    return (long)o;
}

typedef struct { ecdn_str name, value; } kv;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    void *owned[NF + 2 * MAXP];
    size_t nowned = 0;
    ecdn_str f[NF];
    ecdn_param params[MAXP], work[MAXP + 8];
    kv want[MAXP + 9];
    ecdn_v1_request q;
    ecdn_v1_result r;
    const char *bad = "unset";
    unsigned flags = fuzz_byte(&in);
    long long ts = fuzz_i64(&in), nonce = fuzz_i64(&in);
    char tsbuf[32], noncebuf[32];
    size_t i, j, np = 0, nw = 0;
    int rc, expect_ok = 1;

    if (!(flags & 0x80)) {
        ts = (long long)((unsigned long long)ts % (ECDN_MAX_TIMESTAMP + 1ULL));
        nonce = (long long)((unsigned long long)nonce % 0x7fffffffffffffffULL) + 1;
    }
    for (i = 0; i < NF; i++) f[i] = fuzz_field(&in, &owned[nowned++]);
    while (in.n > 0 && np < MAXP) {
        params[np].name = fuzz_field(&in, &owned[nowned++]);
        params[np].value = fuzz_field(&in, &owned[nowned++]);
        np++;
    }

    memset(&q, 0, sizeof q);
    q.secret_id = f[F_ID];
    q.secret_key = f[F_KEY];
    q.host = f[F_HOST];
    q.action = f[F_ACTION];
    q.version = f[F_VERSION];
    if (flags & 0x01) q.method = f[F_METHOD];
    if (flags & 0x02) q.path = f[F_PATH];
    if (flags & 0x04) q.region = f[F_REGION];
    if (flags & 0x08) q.token = f[F_TOKEN];
    if (flags & 0x10) q.signature_method = f[F_SIGM];
    q.timestamp = ts;
    q.nonce = nonce;
    q.params = params;
    q.nparams = np;

    /* Oracle. */
    for (i = F_ID; i <= F_VERSION; i++)
        if (f[i].len == 0) expect_ok = 0;
    if (fuzz_breaker(q.secret_id) || fuzz_breaker(q.host)) expect_ok = 0;
    if (q.method.ptr && !eq(q.method, "GET") && !eq(q.method, "POST")) expect_ok = 0;
    if (q.path.ptr && (q.path.len == 0 || q.path.ptr[0] != '/' || fuzz_breaker(q.path))) expect_ok = 0;
    if (q.signature_method.ptr && !eq(q.signature_method, "HmacSHA1") && !eq(q.signature_method, "HmacSHA256"))
        expect_ok = 0;
    if (ts < 0 || ts > ECDN_MAX_TIMESTAMP || nonce <= 0) expect_ok = 0;

    snprintf(tsbuf, sizeof tsbuf, "%lld", ts);
    snprintf(noncebuf, sizeof noncebuf, "%lld", nonce);
    for (i = 0; i < np; i++) {
        static const char *const SET_BY_SIGNER[] = { "Action", "Nonce", "SecretId", "Timestamp", "Version",
                                                     "Region", "Token", "SignatureMethod", "Signature" };
        size_t k;
        if (params[i].name.len == 0) expect_ok = 0;
        for (k = 0; k < sizeof SET_BY_SIGNER / sizeof SET_BY_SIGNER[0]; k++)
            if (eq(params[i].name, SET_BY_SIGNER[k])) expect_ok = 0; /* refused, even when not duplicated */
        want[nw].name = params[i].name;
        want[nw].value = params[i].value;
        nw++;
    }
#define ADD(n, v) do { want[nw].name.ptr = (n); want[nw].name.len = strlen(n); want[nw].value = (v); nw++; } while (0)
    {
        ecdn_str t = { tsbuf, strlen(tsbuf) }, nn = { noncebuf, strlen(noncebuf) };
        ADD("Action", q.action);
        ADD("Nonce", nn);
        ADD("SecretId", q.secret_id);
        ADD("Timestamp", t);
        ADD("Version", q.version);
        if (q.region.len) ADD("Region", q.region); /* empty optional values are not sent */
        if (q.token.len) ADD("Token", q.token);
        if (q.signature_method.ptr) ADD("SignatureMethod", q.signature_method);
    }
#undef ADD
    /* Insertion sort by name (independent of the signer's qsort); duplicates are refused. */
    for (i = 1; i < nw; i++) {
        kv x = want[i];
        for (j = i; j > 0 && name_cmp(want[j - 1].name, x.name) > 0; j--) want[j] = want[j - 1];
        want[j] = x;
    }
    for (i = 1; i < nw; i++)
        if (name_cmp(want[i - 1].name, want[i].name) == 0) expect_ok = 0;

    ecdn_v1_result_init(&r);
    rc = ecdn_sign_v1(&q, work, &r, &bad);
    if (!expect_ok) {
        FUZZ_CHECK(rc == ECDN_EFIELD || rc == ECDN_ERANGE);
        FUZZ_CHECK(bad != NULL && strcmp(bad, "unset") != 0);
    } else {
        const char *method = q.method.ptr ? (eq(q.method, "POST") ? "POST" : "GET") : "GET";
        ecdn_str path = q.path.ptr ? q.path : (ecdn_str){ "/", 1 };
        const EVP_MD *md = q.signature_method.ptr && eq(q.signature_method, "HmacSHA256") ? EVP_sha256() : EVP_sha1();
        char *sts = NULL, *dec;
        size_t stsn = 0;
        unsigned char mac[EVP_MAX_MD_SIZE], b64[100];
        unsigned int maclen = 0;
        const char *p, *end;
        FILE *m;

        FUZZ_CHECK(rc == ECDN_OK);
        m = open_memstream(&sts, &stsn);
        fputs(method, m);
        fwrite(q.host.ptr, 1, q.host.len, m);
        fwrite(path.ptr, 1, path.len, m);
        fputc('?', m);
        for (i = 0; i < nw; i++) {
            if (i) fputc('&', m);
            fwrite(want[i].name.ptr, 1, want[i].name.len, m);
            fputc('=', m);
            fwrite(want[i].value.ptr, 1, want[i].value.len, m);
        }
        fclose(m);
        FUZZ_CHECK(r.string_to_sign.len == stsn && memcmp(r.string_to_sign.data, sts, stsn) == 0);
        FUZZ_CHECK(HMAC(md, q.secret_key.ptr, (int)q.secret_key.len, (unsigned char *)sts, stsn, mac, &maclen));
        EVP_EncodeBlock(b64, mac, (int)maclen);
        FUZZ_CHECK(strcmp((char *)b64, r.signature) == 0);

        /* Decode the query: name=value pairs joined by '&', Signature last. */
        FUZZ_CHECK(r.query.data != NULL && r.query.data[r.query.len] == '\0');
        dec = (char *)malloc(r.query.len + 1);
        FUZZ_CHECK(dec != NULL);
        p = r.query.data;
        end = p + r.query.len;
        for (i = 0; i <= nw; i++) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *stop = amp ? amp : end;
            const char *eqs = memchr(p, '=', (size_t)(stop - p));
            long dn;
            FUZZ_CHECK(eqs != NULL);
            FUZZ_CHECK((amp == NULL) == (i == nw)); /* exactly nw + 1 pairs */
            dn = pct_decode(p, (size_t)(eqs - p), dec);
            if (i < nw) FUZZ_CHECK(dn >= 0 && (size_t)dn == want[i].name.len && memcmp(dec, want[i].name.ptr, (size_t)dn) == 0);
            else FUZZ_CHECK(dn == 9 && memcmp(dec, "Signature", 9) == 0);
            dn = pct_decode(eqs + 1, (size_t)(stop - eqs - 1), dec);
            if (i < nw) FUZZ_CHECK(dn >= 0 && (size_t)dn == want[i].value.len && memcmp(dec, want[i].value.ptr, (size_t)dn) == 0);
            else FUZZ_CHECK(dn >= 0 && (size_t)dn == strlen(r.signature) && memcmp(dec, r.signature, (size_t)dn) == 0);
            p = stop + (amp ? 1 : 0);
        }
        free(dec);
        free(sts);
    }
    ecdn_v1_result_free(&r);
    FUZZ_CHECK(r.query.data == NULL && r.string_to_sign.data == NULL);
    ecdn_v1_result_free(&r);
    for (i = 0; i < nowned; i++) free(owned[i]);
    return 0;
}
