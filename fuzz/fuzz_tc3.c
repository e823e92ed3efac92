/* libFuzzer target: the TC3-HMAC-SHA256 signer over arbitrary field contents.
 * A field oracle predicts acceptance; an accepted request is re-signed here by
 * an independent implementation (stdio + OpenSSL EVP + gmtime_r, the key
 * chain derived afresh every time) and every output byte is compared.
 * The signers under test live across inputs, so their derived-key caches and
 * reused contexts carry state from one input to the next: the calling
 * thread's signer (ecdn_sign_tc3), or (flag 0x80) a small one of two entries
 * that evicts all the time. In that mode, bit 2 of the input's size moves the
 * timestamp to within two seconds of a UTC midnight and swaps the secret key
 * for one of three near-identical keys (same, last byte flipped, one byte
 * longer), so consecutive inputs hit, miss and replace entries. Bit 3 of the
 * timestamp and of the size forgets the key first (either signer), bits 4
 * and 5 of the timestamp clear the small signer's cache. Bit 0 of the
 * size asks for no debug strings; bit 1 reuses the previous input's result
 * without freeing it. The prepared signer (ecdn_tc3_prepare) must refuse what
 * the signer refuses and give the same bytes for the rest, at the input's
 * timestamp, at a day's distance and at the input's again (its day key must
 * follow the date); it lives across inputs while their fields stay the same.
 * Its borrowing variant (ecdn.client's) is checked at the input's timestamp. */
#define _POSIX_C_SOURCE 200809L
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include "fuzz_input.h"
#include "sign.h"

enum { F_ID, F_KEY, F_SERVICE, F_HOST, F_ACTION, F_VERSION, F_REGION, F_TOKEN, F_LANG, F_CT, F_PAYLOAD, NF };

static void hexs(const unsigned char *p, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

static void sha256hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    FUZZ_CHECK(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) && len == 32);
    hexs(md, 32, out);
}

static void hmac(const void *k, size_t kn, const void *m, size_t mn, unsigned char out[32])
{
    unsigned int len = 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), k, (int)kn, m, mn, out, &len) && len == 32);
}

static int same(ecdn_buf *b, const char *p, size_t n)
{
    return b->len == n && (n == 0 || (memcmp(b->data, p, n) == 0 && b->data[n] == '\0'));
}

static int str_same(ecdn_str a, const char *p, size_t n)
{
    return a.len == n && (n == 0 || memcmp(a.ptr, p, n) == 0);
}

static int str_eq(ecdn_str a, ecdn_str b)
{
    return (a.ptr == NULL) == (b.ptr == NULL) && str_same(a, b.ptr, b.len);
}

static int same_fields(const ecdn_tc3_request *a, const ecdn_tc3_request *b)
{
    return str_eq(a->secret_id, b->secret_id) && str_eq(a->secret_key, b->secret_key) &&
           str_eq(a->service, b->service) && str_eq(a->host, b->host) && str_eq(a->version, b->version) &&
           str_eq(a->region, b->region) && str_eq(a->token, b->token) && str_eq(a->language, b->language) &&
           str_eq(a->content_type, b->content_type) && a->sign_action == b->sign_action;
}

/* The prepared signer's signature of q at ts is byte for byte `want`. */
static void check_prepared(ecdn_tc3_prepared *p, const ecdn_tc3_request *q, long long ts,
                           const ecdn_tc3_result *want)
{
    ecdn_tc3_result got;
    const char *bad = NULL;
    size_t k;
    ecdn_tc3_result_init(&got);
    FUZZ_CHECK(ecdn_tc3_prepared_sign(p, q->action, q->payload, ts, q->omit_debug, &got, &bad) == ECDN_OK);
    FUZZ_CHECK(strcmp(got.signature, want->signature) == 0 && strcmp(got.date, want->date) == 0);
    FUZZ_CHECK(same(&got.authorization, want->authorization.data, want->authorization.len));
    FUZZ_CHECK(same(&got.canonical_request, want->canonical_request.data, want->canonical_request.len));
    FUZZ_CHECK(same(&got.string_to_sign, want->string_to_sign.data, want->string_to_sign.len));
    FUZZ_CHECK(got.nheaders == want->nheaders);
    for (k = 0; k < got.nheaders; k++) {
        FUZZ_CHECK(got.headers[k].name == want->headers[k].name);
        FUZZ_CHECK(str_same(got.headers[k].value, want->headers[k].value.ptr, want->headers[k].value.len));
    }
    ecdn_tc3_result_free(&got);
}

static ecdn_tc3_prepared *prepared; /* lives across inputs while their fields are the same */

static ecdn_tc3_signer *small_signer;
static ecdn_tc3_result kept; /* reused across inputs */
static int kept_init;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = { data, size };
    void *owned[NF];
    ecdn_str f[NF];
    ecdn_tc3_request q;
    ecdn_tc3_result fresh, *rp;
    const char *bad = "unset";
    unsigned flags = fuzz_byte(&in);
    long long ts = fuzz_i64(&in);
    int i, rc, expect_ok = 1, use_small = (flags & 0x80) != 0, reuse = (size & 2) != 0;
    char *pool_key = NULL;

    if (!(flags & 0x40)) ts = (long long)((unsigned long long)ts % (ECDN_MAX_TIMESTAMP + 1ULL));
    for (i = 0; i < F_PAYLOAD; i++) f[i] = fuzz_field(&in, &owned[i]);
    f[F_PAYLOAD] = fuzz_rest(&in, &owned[F_PAYLOAD]);

    memset(&q, 0, sizeof q);
    q.secret_id = f[F_ID];
    q.secret_key = f[F_KEY];
    q.service = f[F_SERVICE];
    q.host = f[F_HOST];
    q.action = f[F_ACTION];
    q.version = f[F_VERSION];
    if (flags & 0x02) q.region = f[F_REGION];
    if (flags & 0x04) q.token = f[F_TOKEN];
    if (flags & 0x08) q.language = f[F_LANG];
    if (flags & 0x10) q.content_type = f[F_CT];
    if (!(flags & 0x20)) q.payload = f[F_PAYLOAD];
    q.sign_action = flags & 1;
    q.omit_debug = (int)(size & 1);
    if (use_small && small_signer == NULL) FUZZ_CHECK((small_signer = ecdn_tc3_signer_new(2)) != NULL);
    if (use_small && (size & 4)) {
        /* Near a midnight, with one of three near-identical keys. */
        unsigned long long u = (unsigned long long)ts;
        ts = 1551139200LL - 2 + (long long)(u % 5);
        if (q.secret_key.len > 0) {
            size_t n = q.secret_key.len, which = (size_t)((u >> 3) % 3);
            pool_key = (char *)malloc(n + (which == 2)); /* exact size: ASan sees any overread */
            FUZZ_CHECK(pool_key != NULL);
            memcpy(pool_key, q.secret_key.ptr, n);
            if (which == 1) pool_key[n - 1] ^= 1;
            else if (which == 2) pool_key[n++] = 'x';
            q.secret_key.ptr = pool_key;
            q.secret_key.len = n;
        }
    }
    q.timestamp = ts;
    if (((unsigned long long)ts & 8) && (size & 8)) {
        if (use_small) ecdn_tc3_signer_forget(small_signer, q.secret_key);
        else ecdn_tc3_forget_key(q.secret_key);
    }
    if (use_small && ((unsigned long long)ts & 16) && ((unsigned long long)ts & 32)) ecdn_tc3_signer_clear(small_signer);

    /* Oracle: required fields non-empty; header fields free of CR, LF, NUL. */
    for (i = F_ID; i <= F_VERSION; i++)
        if (f[i].len == 0) expect_ok = 0;
    {
        ecdn_str hdr[] = { q.secret_id, q.service, q.host, q.action, q.version,
                           q.region, q.token, q.language, q.content_type };
        size_t k;
        for (k = 0; k < sizeof hdr / sizeof hdr[0]; k++)
            if (hdr[k].ptr && fuzz_breaker(hdr[k])) expect_ok = 0;
    }
    if (q.content_type.ptr && q.content_type.len == 0) expect_ok = 0; /* given but empty */
    if (ts < 0 || ts > ECDN_MAX_TIMESTAMP) expect_ok = 0;

    if (reuse) {
        if (!kept_init) { ecdn_tc3_result_init(&kept); kept_init = 1; }
        rp = &kept;
    } else {
        ecdn_tc3_result_init(&fresh);
        rp = &fresh;
    }
#define r (*rp)
    rc = use_small ? ecdn_tc3_signer_sign(small_signer, &q, &r, &bad) : ecdn_sign_tc3(&q, &r, &bad);
    if (use_small) {
        ecdn_tc3_cache_stats st;
        ecdn_tc3_signer_stats(small_signer, &st);
        FUZZ_CHECK(st.capacity == 2 && st.entries <= 2);
    }
    if (!expect_ok) {
        FUZZ_CHECK(rc == ECDN_EFIELD || rc == ECDN_ERANGE);
        FUZZ_CHECK(bad != NULL && strcmp(bad, "unset") != 0);
    } else {
        const char *ct = q.content_type.ptr ? q.content_type.ptr : "application/json";
        size_t ctlen = q.content_type.ptr ? q.content_type.len : 16;
        const char *signed_headers = q.sign_action ? "content-type;host;x-tc-action" : "content-type;host";
        char phash[65], chash[65], date[16], tsbuf[32], sig[65];
        unsigned char k1[32], k2[32], k3[32], k4[32];
        char *cr = NULL, *sts = NULL, *auth = NULL, *key = NULL;
        size_t crn = 0, stsn = 0, authn = 0, keyn = 0;
        FILE *m;
        struct tm tm;
        time_t tt = (time_t)ts;
        size_t k;

        FUZZ_CHECK(rc == ECDN_OK);
        FUZZ_CHECK(gmtime_r(&tt, &tm) != NULL);
        FUZZ_CHECK(strftime(date, sizeof date, "%Y-%m-%d", &tm) == 10);
        FUZZ_CHECK(strcmp(date, r.date) == 0);
        snprintf(tsbuf, sizeof tsbuf, "%lld", ts);
        FUZZ_CHECK(strcmp(tsbuf, r.timestamp) == 0);

        sha256hex(f[F_PAYLOAD].ptr, q.payload.ptr ? f[F_PAYLOAD].len : 0, phash);
        m = open_memstream(&cr, &crn);
        fputs("POST\n/\n\ncontent-type:", m);
        fwrite(ct, 1, ctlen, m);
        fputs("\nhost:", m);
        fwrite(q.host.ptr, 1, q.host.len, m);
        fputc('\n', m);
        if (q.sign_action) {
            fputs("x-tc-action:", m);
            for (k = 0; k < q.action.len; k++) {
                unsigned char c = (unsigned char)q.action.ptr[k];
                fputc(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c, m);
            }
            fputc('\n', m);
        }
        fprintf(m, "\n%s\n%s", signed_headers, phash);
        fclose(m);
        if (q.omit_debug) FUZZ_CHECK(r.canonical_request.len == 0 && r.string_to_sign.len == 0);
        else FUZZ_CHECK(same(&r.canonical_request, cr, crn));

        sha256hex(cr, crn, chash);
        m = open_memstream(&sts, &stsn);
        fprintf(m, "TC3-HMAC-SHA256\n%s\n%s/", tsbuf, date);
        fwrite(q.service.ptr, 1, q.service.len, m);
        fprintf(m, "/tc3_request\n%s", chash);
        fclose(m);
        if (!q.omit_debug) FUZZ_CHECK(same(&r.string_to_sign, sts, stsn));

        m = open_memstream(&key, &keyn);
        fputs("TC3", m);
        fwrite(q.secret_key.ptr, 1, q.secret_key.len, m);
        fclose(m);
        hmac(key, keyn, date, 10, k1);
        hmac(k1, 32, q.service.ptr, q.service.len, k2);
        hmac(k2, 32, "tc3_request", 11, k3);
        hmac(k3, 32, sts, stsn, k4);
        hexs(k4, 32, sig);
        FUZZ_CHECK(strcmp(sig, r.signature) == 0);

        m = open_memstream(&auth, &authn);
        fputs("TC3-HMAC-SHA256 Credential=", m);
        fwrite(q.secret_id.ptr, 1, q.secret_id.len, m);
        fprintf(m, "/%s/", date);
        fwrite(q.service.ptr, 1, q.service.len, m);
        fprintf(m, "/tc3_request, SignedHeaders=%s, Signature=%s", signed_headers, sig);
        fclose(m);
        FUZZ_CHECK(same(&r.authorization, auth, authn));

        /* Headers: the six always-sent ones in order, then the optional ones given. */
        {
            struct { const char *name; ecdn_str v; } want[9];
            size_t nw = 0;
            ecdn_str a = { auth, authn }, c = { ct, ctlen }, t = { tsbuf, strlen(tsbuf) };
#define WANT(n, val) do { want[nw].name = (n); want[nw].v = (val); nw++; } while (0)
            WANT("Authorization", a);
            WANT("Content-Type", c);
            WANT("Host", q.host);
            WANT("X-TC-Action", q.action);
            WANT("X-TC-Timestamp", t);
            WANT("X-TC-Version", q.version);
            /* Empty optional values are not sent. */
            if (q.region.len) WANT("X-TC-Region", q.region);
            if (q.token.len) WANT("X-TC-Token", q.token);
            if (q.language.len) WANT("X-TC-Language", q.language);
#undef WANT
            FUZZ_CHECK(r.nheaders == nw);
            for (k = 0; k < nw; k++) {
                FUZZ_CHECK(strcmp(r.headers[k].name, want[k].name) == 0);
                FUZZ_CHECK(str_same(r.headers[k].value, want[k].v.ptr, want[k].v.len));
                /* Nothing that could split a header line ever leaves the signer. */
                FUZZ_CHECK(!fuzz_breaker(r.headers[k].value));
            }
        }
        free(cr);
        free(sts);
        free(auth);
        free(key);
    }
    {
        int prc = ECDN_OK;
        const char *pbad = NULL;
        if (prepared && !same_fields(ecdn_tc3_prepared_fields(prepared), &q)) {
            ecdn_tc3_prepared_free(prepared);
            prepared = NULL;
        }
        if (prepared == NULL) prepared = ecdn_tc3_prepare(&q, &prc, &pbad);
        {
            /* The borrowing variant (ecdn.client's) refuses the same fields and signs the same. */
            int brc = ECDN_OK;
            const char *bbad = NULL;
            ecdn_tc3_prepared *b = ecdn_tc3_prepare_borrowed(&q, &brc, &bbad);
            FUZZ_CHECK((b == NULL) == (prepared == NULL) && brc == prc);
            if (b && expect_ok) check_prepared(b, &q, ts, &r);
            ecdn_tc3_prepared_free(b);
        }
        if (!expect_ok) {
            if (prepared == NULL) FUZZ_CHECK(prc == ECDN_EFIELD && pbad != NULL);
            else {
                ecdn_tc3_result t;
                ecdn_tc3_result_init(&t);
                prc = ecdn_tc3_prepared_sign(prepared, q.action, q.payload, ts, q.omit_debug, &t, &pbad);
                FUZZ_CHECK((prc == ECDN_EFIELD || prc == ECDN_ERANGE) && pbad != NULL && t.nheaders == 0);
                ecdn_tc3_result_free(&t);
            }
        } else {
            ecdn_tc3_request q2 = q;
            ecdn_tc3_result other;
            FUZZ_CHECK(prepared != NULL && prc == ECDN_OK);
            check_prepared(prepared, &q, ts, &r);
            q2.timestamp = ts + 86400 <= ECDN_MAX_TIMESTAMP ? ts + 86400 : ts - 86400;
            ecdn_tc3_result_init(&other);
            FUZZ_CHECK(ecdn_sign_tc3(&q2, &other, &pbad) == ECDN_OK);
            check_prepared(prepared, &q, q2.timestamp, &other);
            ecdn_tc3_result_free(&other);
            check_prepared(prepared, &q, ts, &r);
        }
    }
    if (!reuse) {
        ecdn_tc3_result_free(&r);
        /* Freed results are empty and freeing twice is harmless. */
        FUZZ_CHECK(r.authorization.data == NULL && r.canonical_request.data == NULL && r.nheaders == 0);
        ecdn_tc3_result_free(&r);
    }
#undef r
    for (i = 0; i < NF; i++) free(owned[i]);
    free(pool_key);
    return 0;
}
