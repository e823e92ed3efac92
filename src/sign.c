/* For SHA256_Init/Update/Final (sha_ctx below): deprecated since 3.0. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sign.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>

/* The SHA-256 of each signature: OpenSSL's low-level calls, or where they
 * are missing (or with -DECDN_SHA256_EVP) an EVP context (sha_ctx below). */
#if defined(OPENSSL_NO_DEPRECATED_3_0) || defined(ECDN_SHA256_EVP)
#define SHA_VIA_EVP 1
#else
#define SHA_VIA_EVP 0
#endif

/* Two lower-case hex digits per byte value: one 2-byte copy per input byte. */
static const char HEX2[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) memcpy(out + 2 * i, HEX2 + 2 * in[i], 2);
    out[2 * n] = '\0';
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm): no
 * gmtime, no locale, no time zone, the same on every platform. */
void ecdn_utc_date(long long ts, char out[11])
{
    long long z = ts / 86400 + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    long long y = (long long)yoe + era * 400 + (m <= 2);
    /* Callers keep ts within 0..ECDN_MAX_TIMESTAMP, so y is 1970..9999. */
    unsigned yy = (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y);
    out[0] = (char)('0' + yy / 1000); out[1] = (char)('0' + yy / 100 % 10);
    out[2] = (char)('0' + yy / 10 % 10); out[3] = (char)('0' + yy % 10);
    out[4] = '-'; out[5] = (char)('0' + m / 10); out[6] = (char)('0' + m % 10);
    out[7] = '-'; out[8] = (char)('0' + d / 10); out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

/* Word at a time: a byte is 0, LF or CR. HAS_ZERO is exact about whether
 * some byte of the word is zero (it may misplace which one, not needed here). */
#define ONES ((unsigned long long)0x0101010101010101ULL)
#define HIGHS ((unsigned long long)0x8080808080808080ULL)
#define HAS_ZERO(v) (((v) - ONES) & ~(v) & HIGHS)

int ecdn_has_header_breaker(ecdn_str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;
    for (; i + 8 <= s.len; i += 8) {
        unsigned long long w;
        memcpy(&w, p + i, 8);
        if (HAS_ZERO(w) | HAS_ZERO(w ^ (ONES * '\n')) | HAS_ZERO(w ^ (ONES * '\r'))) return 1;
    }
    for (; i < s.len; i++)
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0') return 1;
    return 0;
}

int ecdn_url_encode(ecdn_buf *b, const char *p, size_t n)
{
    static const char UHEX[] = "0123456789ABCDEF";
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            if (ecdn_buf_addc(b, (char)c)) return -1;
        } else {
            char e[3];
            e[0] = '%'; e[1] = UHEX[c >> 4]; e[2] = UHEX[c & 15];
            if (ecdn_buf_add(b, e, 3)) return -1;
        }
    }
    return 0;
}

/* A required field: present, non-empty, and (when it ends up in a header or
 * the query line) free of CR, LF and NUL. */
static int check_field(ecdn_str s, int required, int header, const char *name, const char **bad)
{
    if (s.ptr == NULL) {
        if (!required) return 0;
        *bad = name;
        return -1;
    }
    if ((required && s.len == 0) || (header && ecdn_has_header_breaker(s))) {
        *bad = name;
        return -1;
    }
    return 0;
}

/* ---- TC3 signer: fetched algorithms, reused contexts, derived-key cache ---- */

#define SERVICE_MAX 64   /* longer services are signed correctly but not cached */
#define KEYBUF 256       /* "TC3" + secret key on the stack up to this size */

/* A signing key (32 bytes), ready for HMAC-SHA256: its inner and outer
 * blocks, K ^ 0x36.. and K ^ 0x5c... A signature then takes one digest
 * context and no allocation, where re-using a keyed EVP_MAC context copies
 * digest contexts and allocates every time. As secret as the key: wiped
 * with whatever holds it. */
typedef struct {
    unsigned char ipad[64], opad[64];
} day_key;

static void day_key_set(day_key *d, const unsigned char k[32])
{
    size_t i;
    for (i = 0; i < 64; i++) {
        unsigned char b = i < 32 ? k[i] : 0;
        d->ipad[i] = (unsigned char)(b ^ 0x36);
        d->opad[i] = (unsigned char)(b ^ 0x5c);
    }
}

typedef struct {
    day_key key;                 /* the derived signing key */
    unsigned long long stamp;    /* last use (LRU); 0 = empty */
    unsigned char fp[32];        /* SHA-256("TC3" + secret key): never the key itself */
    char date[10];
    unsigned char service_len;
    char service[SERVICE_MAX];
} tc3_entry;

struct ecdn_tc3_signer {
#if SHA_VIA_EVP
    EVP_MD *sha256;
    EVP_MD_CTX *md;
#endif
    EVP_MAC *hmac;
    EVP_MAC_CTX *mac;            /* the key chain (left keyed with a public key) */
    tc3_entry *entries;
    size_t capacity;
    unsigned long long clock;
    ecdn_tc3_cache_stats stats;
};

static EVP_MAC_CTX *new_hmac_ctx(EVP_MAC *hmac)
{
    OSSL_PARAM params[2];
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(hmac);
    if (m == NULL) return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(m, params)) {
        EVP_MAC_CTX_free(m);
        return NULL;
    }
    return m;
}

ecdn_tc3_signer *ecdn_tc3_signer_new(size_t capacity)
{
    ecdn_tc3_signer *s;
    if (capacity > ECDN_TC3_CACHE_MAX) capacity = ECDN_TC3_CACHE_MAX;
    s = (ecdn_tc3_signer *)calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->capacity = capacity;
    s->stats.capacity = capacity;
    if (capacity) s->entries = (tc3_entry *)calloc(capacity, sizeof *s->entries);
#if SHA_VIA_EVP
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    s->md = EVP_MD_CTX_new();
    if (s->sha256 == NULL || s->md == NULL) {
        ecdn_tc3_signer_free(s);
        return NULL;
    }
#endif
    s->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if ((capacity && s->entries == NULL) || s->hmac == NULL || (s->mac = new_hmac_ctx(s->hmac)) == NULL) {
        ecdn_tc3_signer_free(s);
        return NULL;
    }
    return s;
}

static void entry_wipe(tc3_entry *e)
{
    OPENSSL_cleanse(e, sizeof *e);
}

void ecdn_tc3_signer_clear(ecdn_tc3_signer *s)
{
    size_t i;
    if (s == NULL) return;
    for (i = 0; i < s->capacity; i++) entry_wipe(&s->entries[i]);
    s->stats.entries = 0;
}

void ecdn_tc3_signer_free(ecdn_tc3_signer *s)
{
    if (s == NULL) return;
    if (s->entries) {
        ecdn_tc3_signer_clear(s);
        free(s->entries);
    }
    EVP_MAC_CTX_free(s->mac);
    EVP_MAC_free(s->hmac);
#if SHA_VIA_EVP
    EVP_MD_CTX_free(s->md);
    EVP_MD_free(s->sha256);
#endif
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

void ecdn_tc3_signer_stats(const ecdn_tc3_signer *s, ecdn_tc3_cache_stats *out)
{
    if (s == NULL) memset(out, 0, sizeof *out);
    else *out = s->stats;
}

/* SHA-256 of each signature's four messages. OpenSSL 3's EVP_DigestInit
 * re-creates its provider context and asks ENGINE for an implementation on
 * every call: about 100 ns a digest, more when cold, as in a purge. The
 * low-level calls hash the same way without that. A build of OpenSSL
 * without the deprecated calls, or -DECDN_SHA256_EVP (make asan, so both
 * ways run the suite), uses the signer's EVP context. */
#if SHA_VIA_EVP
typedef struct { ecdn_tc3_signer *s; } sha_ctx;
static int sha_init(sha_ctx *c, ecdn_tc3_signer *s)
{
    c->s = s;
    return EVP_DigestInit_ex2(s->md, s->sha256, NULL) ? 0 : -1;
}
static int sha_update(sha_ctx *c, const void *p, size_t n) { return EVP_DigestUpdate(c->s->md, p, n) ? 0 : -1; }
static int sha_final(sha_ctx *c, unsigned char md[32])
{
    unsigned int len = 0;
    return EVP_DigestFinal_ex(c->s->md, md, &len) && len == 32 ? 0 : -1;
}
/* (On success only the digest is left in it; a failure may leave a key's pad.) */
static void sha_done(sha_ctx *c, int failed) { if (failed) EVP_MD_CTX_reset(c->s->md); }
#else
typedef SHA256_CTX sha_ctx;
static int sha_init(sha_ctx *c, ecdn_tc3_signer *s) { (void)s; return SHA256_Init(c) ? 0 : -1; }
static int sha_update(sha_ctx *c, const void *p, size_t n) { return SHA256_Update(c, p, n) ? 0 : -1; }
static int sha_final(sha_ctx *c, unsigned char md[32]) { return SHA256_Final(md, c) ? 0 : -1; }
static void sha_done(sha_ctx *c, int failed) { (void)failed; OPENSSL_cleanse(c, sizeof *c); } /* may hold a key's pad */
#endif

static int sha256_raw(ecdn_tc3_signer *s, const void *p, size_t n, unsigned char md[32])
{
    sha_ctx c;
    int rc = sha_init(&c, s) || sha_update(&c, p, n) || sha_final(&c, md);
    sha_done(&c, rc); /* (the fingerprint hashes a secret key) */
    return rc ? -1 : 0;
}

static int sha256_hex(ecdn_tc3_signer *s, const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    if (sha256_raw(s, p, n, md)) return -1;
    hex_encode(md, sizeof md, out);
    return 0;
}

static int hmac256(EVP_MAC_CTX *m, const void *key, size_t klen, const void *msg, size_t mlen,
                   unsigned char out[32])
{
    size_t olen = 0;
    if (!EVP_MAC_init(m, (const unsigned char *)key, klen, NULL) ||
        !EVP_MAC_update(m, (const unsigned char *)msg, mlen) || !EVP_MAC_final(m, out, &olen, 32) || olen != 32)
        return -1;
    return 0;
}

/* "TC3" + secret key, on the stack when it fits; *heap owns it otherwise.
 * The caller wipes both. */
static const unsigned char *tc3_key(ecdn_str secret, unsigned char stack[KEYBUF], ecdn_buf *heap, size_t *len)
{
    *len = 3 + secret.len;
    if (secret.len <= KEYBUF - 3) {
        memcpy(stack, "TC3", 3);
        memcpy(stack + 3, secret.ptr, secret.len);
        return stack;
    }
    ecdn_buf_add(heap, "TC3", 3);
    ecdn_buf_addstr(heap, secret);
    return heap->failed ? NULL : (const unsigned char *)heap->data;
}

static int fingerprint(ecdn_tc3_signer *s, ecdn_str secret, unsigned char fp[32])
{
    unsigned char stack[KEYBUF];
    ecdn_buf heap;
    size_t n;
    const unsigned char *k;
    int rc;
    ecdn_buf_init(&heap);
    k = tc3_key(secret, stack, &heap, &n);
    rc = k ? (sha256_raw(s, k, n, fp) ? ECDN_ECRYPTO : ECDN_OK) : ECDN_ENOMEM;
    if (k == stack) OPENSSL_cleanse(stack, n);
    ecdn_buf_free(&heap);
    return rc;
}

void ecdn_tc3_signer_forget(ecdn_tc3_signer *s, ecdn_str secret_key)
{
    unsigned char fp[32];
    size_t i;
    if (s == NULL || s->capacity == 0 || secret_key.ptr == NULL) return;
    if (fingerprint(s, secret_key, fp) != ECDN_OK) {
        ecdn_tc3_signer_clear(s); /* cannot tell which: forget them all */
        return;
    }
    for (i = 0; i < s->capacity; i++) {
        tc3_entry *e = &s->entries[i];
        if (e->stamp && CRYPTO_memcmp(e->fp, fp, 32) == 0) {
            entry_wipe(e);
            s->stats.entries--;
        }
    }
    OPENSSL_cleanse(fp, sizeof fp);
}

/* The key chain, k3 = HMAC(HMAC(HMAC("TC3" + secret, date), service),
 * "tc3_request"), into *out (set only on success; k1, k2 and k3 are wiped). */
static int derive_day_key(EVP_MAC_CTX *m, const unsigned char *key, size_t klen, const char *date,
                          ecdn_str service, day_key *out)
{
    static const unsigned char PUBLIC_KEY[32]; /* all zero */
    unsigned char k1[32], k2[32], k3[32];
    int rc = hmac256(m, key, klen, date, 10, k1) || hmac256(m, k1, 32, service.ptr, service.len, k2) ||
             hmac256(m, k2, 32, "tc3_request", 11, k3);
    /* Re-keying wipes the last key (k2): nothing secret stays in the context. */
    if (!EVP_MAC_init(m, PUBLIC_KEY, sizeof PUBLIC_KEY, NULL)) rc = -1;
    if (rc == 0) day_key_set(out, k3);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    OPENSSL_cleanse(k3, sizeof k3);
    return rc;
}

/* The signing key for (secret, date, service): a cached entry's, or, when
 * it cannot be cached, derived into `spare` (the caller wipes it; a cached
 * one passes through it, wiped here). */
static int signing_key(ecdn_tc3_signer *s, ecdn_str secret, ecdn_str service, const char *date, day_key *spare,
                       const day_key **out)
{
    unsigned char stack[KEYBUF], fp[32];
    ecdn_buf heap;
    const unsigned char *key;
    size_t klen, i;
    tc3_entry *slot = NULL, *same = NULL, *empty = NULL, *lru = NULL;
    int cacheable = s->capacity > 0 && service.len <= SERVICE_MAX, rc = ECDN_OK;

    ecdn_buf_init(&heap);
    key = tc3_key(secret, stack, &heap, &klen);
    if (key == NULL) { rc = ECDN_ENOMEM; goto done; }
    if (cacheable) {
        if (sha256_raw(s, key, klen, fp)) { rc = ECDN_ECRYPTO; goto done; }
        for (i = 0; i < s->capacity; i++) {
            tc3_entry *e = &s->entries[i];
            if (e->stamp == 0) {
                if (empty == NULL) empty = e;
                continue;
            }
            if (e->service_len == service.len && memcmp(e->service, service.ptr, service.len) == 0 &&
                CRYPTO_memcmp(e->fp, fp, 32) == 0) {
                if (memcmp(e->date, date, 10) == 0) {
                    e->stamp = ++s->clock;
                    s->stats.hits++;
                    *out = &e->key;
                    goto done;
                }
                same = e;
            }
            if (lru == NULL || e->stamp < lru->stamp) lru = e;
        }
        s->stats.misses++;
    }
    if (derive_day_key(s->mac, key, klen, date, service, spare)) {
        rc = ECDN_ECRYPTO;
        goto done;
    }
    if (!cacheable) {
        *out = spare;
        goto done;
    }
    if (same) { slot = same; s->stats.replaced++; }
    else if (empty) { slot = empty; s->stats.entries++; }
    else { slot = lru; s->stats.evictions++; }
    entry_wipe(slot);
    slot->key = *spare;
    OPENSSL_cleanse(spare, sizeof *spare);
    memcpy(slot->fp, fp, 32);
    memcpy(slot->date, date, 10);
    memcpy(slot->service, service.ptr, service.len);
    slot->service_len = (unsigned char)service.len;
    slot->stamp = ++s->clock;
    *out = &slot->key;
done:
    if (key == stack) OPENSSL_cleanse(stack, klen);
    OPENSSL_cleanse(fp, sizeof fp);
    ecdn_buf_free(&heap);
    return rc;
}

/* ---- the calling thread's signer ------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static int g_key_live; /* 1 while g_key may be used */

static void thread_signer_free(void *p)
{
    ecdn_tc3_signer_free((ecdn_tc3_signer *)p);
}

static void make_key(void)
{
    if (pthread_key_create(&g_key, thread_signer_free) == 0) g_key_live = 1;
}

ecdn_tc3_signer *ecdn_tc3_thread_signer(void)
{
    ecdn_tc3_signer *s;
    if (pthread_once(&g_once, make_key) != 0 || !g_key_live) return NULL;
    s = (ecdn_tc3_signer *)pthread_getspecific(g_key);
    if (s == NULL) {
        s = ecdn_tc3_signer_new(ECDN_TC3_CACHE_DEFAULT);
        if (s && pthread_setspecific(g_key, s) != 0) {
            ecdn_tc3_signer_free(s);
            s = NULL;
        }
    }
    return s;
}

void ecdn_tc3_forget_key(ecdn_str secret_key)
{
    if (pthread_once(&g_once, make_key) != 0 || !g_key_live) return;
    ecdn_tc3_signer_forget((ecdn_tc3_signer *)pthread_getspecific(g_key), secret_key);
}

/* When the library is unloaded (Lua's lua_close unloads C modules) or the
 * process exits: wipes this thread's signer. Other threads' signers are
 * wiped when they end, while the library is loaded; once the key is deleted
 * here, a signer of a thread still running is left as it is. */
__attribute__((destructor)) static void thread_signer_atexit(void)
{
    if (!g_key_live) return;
    g_key_live = 0;
    ecdn_tc3_signer_free((ecdn_tc3_signer *)pthread_getspecific(g_key));
    pthread_setspecific(g_key, NULL);
    pthread_key_delete(g_key);
}

/* ---- TC3-HMAC-SHA256 -------------------------------------------------------- */

void ecdn_tc3_result_init(ecdn_tc3_result *r)
{
    memset(r, 0, sizeof *r);
    ecdn_buf_init(&r->authorization);
    ecdn_buf_init(&r->canonical_request);
    ecdn_buf_init(&r->string_to_sign);
}

void ecdn_tc3_result_free(ecdn_tc3_result *r)
{
    ecdn_buf_free(&r->authorization);
    ecdn_buf_free(&r->canonical_request);
    ecdn_buf_free(&r->string_to_sign);
    OPENSSL_cleanse(r->signature, sizeof r->signature);
    r->nheaders = 0;
}

void ecdn_tc3_result_clear(ecdn_tc3_result *r)
{
    ecdn_buf_reset(&r->authorization);   /* wipes */
    ecdn_buf_reset(&r->canonical_request);
    ecdn_buf_reset(&r->string_to_sign);
    OPENSSL_cleanse(r->signature, sizeof r->signature);
    r->nheaders = 0;
}

static ecdn_str cstr(const char *s)
{
    ecdn_str r;
    r.ptr = s;
    r.len = strlen(s);
    return r;
}

const char *const ecdn_tc3_header_names[ECDN_TC3_MAX_HEADERS] = {
    "Authorization", "Content-Type", "Host", "X-TC-Action", "X-TC-Timestamp", "X-TC-Version",
    "X-TC-Region", "X-TC-Token", "X-TC-Language"
};

static void add_header(ecdn_tc3_result *r, int id, ecdn_str value)
{
    r->headers[r->nheaders].name = ecdn_tc3_header_names[id];
    r->headers[r->nheaders].value = value;
    r->nheaders++;
}

static const ecdn_str JSON_CT = { "application/json", 16 };

/* Every field that goes into a header (as itself, or inside Authorization)
 * is checked here and in call_check for CR, LF and NUL: ecdn.client's
 * transport relies on it (ecdn_http_request.headers_checked). A new header
 * field must be added to one of them with header = 1. These are the fields
 * of an account and endpoint (what a prepared signer keeps). */
static int fields_check(const ecdn_tc3_request *q, const char **bad)
{
    ecdn_str ct = q->content_type.ptr ? q->content_type : JSON_CT;
    *bad = NULL;
    if (check_field(q->secret_id, 1, 1, "secret_id", bad) ||
        check_field(q->secret_key, 1, 0, "secret_key", bad) ||
        check_field(q->service, 1, 1, "service", bad) ||
        check_field(q->host, 1, 1, "host", bad) ||
        check_field(q->version, 1, 1, "version", bad) ||
        check_field(q->region, 0, 1, "region", bad) ||
        check_field(q->token, 0, 1, "token", bad) ||
        check_field(q->language, 0, 1, "language", bad) ||
        check_field(ct, 1, 1, "content_type", bad))
        return ECDN_EFIELD;
    return ECDN_OK;
}

/* What comes with each signature: action, payload, timestamp. */
static int call_check(ecdn_str action, ecdn_str payload, long long timestamp, const char **bad)
{
    *bad = NULL;
    if (check_field(action, 1, 1, "action", bad)) return ECDN_EFIELD;
    if (payload.ptr == NULL && payload.len != 0) { *bad = "payload"; return ECDN_EFIELD; }
    if (timestamp < 0 || timestamp > ECDN_MAX_TIMESTAMP) { *bad = "timestamp"; return ECDN_ERANGE; }
    return ECDN_OK;
}

static int tc3_check(const ecdn_tc3_request *q, const char **bad)
{
    int rc = fields_check(q, bad);
    return rc != ECDN_OK ? rc : call_check(q->action, q->payload, q->timestamp, bad);
}

/* Decimal digits of 0 <= v <= ECDN_MAX_TIMESTAMP. */
static void format_ts(long long v, char out[24])
{
    char tmp[24];
    size_t n = 0, i;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v > 0);
    for (i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

static char *put(char *d, const void *p, size_t n)
{
    memcpy(d, p, n);
    return d + n;
}

#define PUT_LIT(d, lit) put((d), (lit), sizeof(lit) - 1)
#define TEXT_STACK 512 /* canonical request, string to sign, authorization: on the stack up to this */

static int prepared_key(ecdn_tc3_prepared *p, const char *date, const day_key **out);

/* HMAC-SHA256 of msg with a ready key: two SHA-256 passes, no allocation. */
static int day_key_hmac(ecdn_tc3_signer *s, const day_key *d, const void *msg, size_t n, unsigned char out[32])
{
    unsigned char inner[32];
    sha_ctx c;
    int rc = sha_init(&c, s) || sha_update(&c, d->ipad, 64) || sha_update(&c, msg, n) || sha_final(&c, inner) ||
             sha_init(&c, s) || sha_update(&c, d->opad, 64) || sha_update(&c, inner, 32) || sha_final(&c, out);
    sha_done(&c, rc);
    OPENSSL_cleanse(inner, sizeof inner);
    return rc ? -1 : 0;
}

/* Signs a checked request with sg's contexts; the signing key comes from p
 * when given (a prepared signer), else from sg's cache. */
static int sign_checked(ecdn_tc3_signer *sg, ecdn_tc3_prepared *p, const ecdn_tc3_request *q, ecdn_tc3_result *r)
{
    static const char SCOPE_TAIL[] = "/tc3_request";
    ecdn_str ct = q->content_type.ptr ? q->content_type : JSON_CT;
    const char *signed_headers = q->sign_action ? "content-type;host;x-tc-action" : "content-type;host";
    size_t shlen = q->sign_action ? 29 : 17, tslen, clen, slen, alen = 0, i;
    char cstack[TEXT_STACK], sstack[TEXT_STACK], astack[TEXT_STACK];
    char *cp = cstack, *sp = sstack, *ap = astack, *d;
    char payload_hash[65], creq_hash[65];
    unsigned char sig[32];
    const day_key *key = NULL;
    day_key spare;               /* the signing key when it is not cached */
    int rc = ECDN_OK;

    /* A reused result starts empty. */
    ecdn_buf_reset(&r->authorization);
    ecdn_buf_reset(&r->canonical_request);
    ecdn_buf_reset(&r->string_to_sign);
    r->nheaders = 0;

    ecdn_utc_date(q->timestamp, r->date);
    format_ts(q->timestamp, r->timestamp);
    tslen = strlen(r->timestamp);

    /* Canonical request: values as the SDKs send them; x-tc-action lower-cased. */
    if (sha256_hex(sg, q->payload.ptr ? q->payload.ptr : "", q->payload.len, payload_hash)) return ECDN_ECRYPTO;
    clen = 21 + ct.len + 6 + q->host.len + 1 + (q->sign_action ? 12 + q->action.len + 1 : 0) + 1 + shlen + 1 + 64;
    if (clen > TEXT_STACK && (cp = (char *)malloc(clen)) == NULL) { rc = ECDN_ENOMEM; goto done; }
    d = PUT_LIT(cp, "POST\n/\n\ncontent-type:");
    d = put(d, ct.ptr, ct.len);
    d = PUT_LIT(d, "\nhost:");
    d = put(d, q->host.ptr, q->host.len);
    *d++ = '\n';
    if (q->sign_action) {
        d = PUT_LIT(d, "x-tc-action:");
        for (i = 0; i < q->action.len; i++) {
            char ch = q->action.ptr[i];
            *d++ = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        *d++ = '\n';
    }
    *d++ = '\n';
    d = put(d, signed_headers, shlen);
    *d++ = '\n';
    put(d, payload_hash, 64);
    if (sha256_hex(sg, cp, clen, creq_hash)) { rc = ECDN_ECRYPTO; goto done; }
    if (!q->omit_debug && ecdn_buf_add(&r->canonical_request, cp, clen)) { rc = ECDN_ENOMEM; goto done; }

    slen = 16 + tslen + 1 + 10 + 1 + q->service.len + (sizeof SCOPE_TAIL - 1) + 1 + 64;
    if (slen > TEXT_STACK && (sp = (char *)malloc(slen)) == NULL) { rc = ECDN_ENOMEM; goto done; }
    d = PUT_LIT(sp, "TC3-HMAC-SHA256\n");
    d = put(d, r->timestamp, tslen);
    *d++ = '\n';
    d = put(d, r->date, 10);
    *d++ = '/';
    d = put(d, q->service.ptr, q->service.len);
    d = put(d, SCOPE_TAIL, sizeof SCOPE_TAIL - 1);
    *d++ = '\n';
    put(d, creq_hash, 64);
    if (!q->omit_debug && ecdn_buf_add(&r->string_to_sign, sp, slen)) { rc = ECDN_ENOMEM; goto done; }

    /* The signing key (cached or derived now; every intermediate is wiped). */
    rc = p ? prepared_key(p, r->date, &key) : signing_key(sg, q->secret_key, q->service, r->date, &spare, &key);
    if (rc != ECDN_OK) goto done;
    if (day_key_hmac(sg, key, sp, slen, sig)) {
        rc = ECDN_ECRYPTO;
        goto done;
    }
    hex_encode(sig, sizeof sig, r->signature);
    OPENSSL_cleanse(sig, sizeof sig);

    alen = 27 + q->secret_id.len + 1 + 10 + 1 + q->service.len + (sizeof SCOPE_TAIL - 1) + 16 + shlen + 12 + 64;
    if (alen > TEXT_STACK && (ap = (char *)malloc(alen)) == NULL) { rc = ECDN_ENOMEM; goto done; }
    d = PUT_LIT(ap, "TC3-HMAC-SHA256 Credential=");
    d = put(d, q->secret_id.ptr, q->secret_id.len);
    *d++ = '/';
    d = put(d, r->date, 10);
    *d++ = '/';
    d = put(d, q->service.ptr, q->service.len);
    d = put(d, SCOPE_TAIL, sizeof SCOPE_TAIL - 1);
    d = PUT_LIT(d, ", SignedHeaders=");
    d = put(d, signed_headers, shlen);
    d = PUT_LIT(d, ", Signature=");
    put(d, r->signature, 64);
    if (ecdn_buf_add(&r->authorization, ap, alen)) { rc = ECDN_ENOMEM; goto done; }

    {
        ecdn_str auth;
        auth.ptr = r->authorization.data;
        auth.len = r->authorization.len;
        add_header(r, ECDN_TC3_H_AUTHORIZATION, auth);
    }
    add_header(r, ECDN_TC3_H_CONTENT_TYPE, ct);
    add_header(r, ECDN_TC3_H_HOST, q->host);
    add_header(r, ECDN_TC3_H_ACTION, q->action);
    add_header(r, ECDN_TC3_H_TIMESTAMP, cstr(r->timestamp));
    add_header(r, ECDN_TC3_H_VERSION, q->version);
    /* An empty optional value is not sent, as the SDKs do (curl would drop it anyway). */
    if (q->region.len) add_header(r, ECDN_TC3_H_REGION, q->region);
    if (q->token.len) add_header(r, ECDN_TC3_H_TOKEN, q->token);
    if (q->language.len) add_header(r, ECDN_TC3_H_LANGUAGE, q->language);
done:
    if (key == &spare) OPENSSL_cleanse(&spare, sizeof spare);
    /* The authorization text holds a signature: wiped like the result's copy. */
    if (ap != astack) {
        if (ap) OPENSSL_cleanse(ap, alen);
        free(ap);
    } else if (alen) {
        OPENSSL_cleanse(astack, alen);
    }
    if (cp != cstack) free(cp);
    if (sp != sstack) free(sp);
    return rc;
}

int ecdn_tc3_signer_sign(ecdn_tc3_signer *s, const ecdn_tc3_request *q, ecdn_tc3_result *r, const char **bad)
{
    int rc;
    if (s == NULL) return ecdn_sign_tc3(q, r, bad);
    rc = tc3_check(q, bad);
    if (rc != ECDN_OK) return rc;
    rc = sign_checked(s, NULL, q, r);
    if (rc != ECDN_OK) r->nheaders = 0;
    return rc;
}

int ecdn_sign_tc3(const ecdn_tc3_request *q, ecdn_tc3_result *r, const char **bad)
{
    ecdn_tc3_signer *s;
    int rc = tc3_check(q, bad);
    if (rc != ECDN_OK) return rc;
    s = ecdn_tc3_thread_signer();
    if (s) rc = sign_checked(s, NULL, q, r);
    else if ((s = ecdn_tc3_signer_new(0)) == NULL) rc = ECDN_ENOMEM;
    else {
        rc = sign_checked(s, NULL, q, r);
        ecdn_tc3_signer_free(s);
    }
    if (rc != ECDN_OK) r->nheaders = 0;
    return rc;
}

/* ---- the prepared signer ------------------------------------------------- */

/* Prepared signers not yet freed, process-wide (for tests). */
static long g_prepared_live;
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;

static void count_live(long d)
{
    pthread_mutex_lock(&g_live_lock);
    g_prepared_live += d;
    pthread_mutex_unlock(&g_live_lock);
}

long ecdn_tc3_prepared_live(void)
{
    long n;
    pthread_mutex_lock(&g_live_lock);
    n = g_prepared_live;
    pthread_mutex_unlock(&g_live_lock);
    return n;
}

struct ecdn_tc3_prepared {
    ecdn_tc3_request q;          /* the fields; strings point into text (or are borrowed) */
    ecdn_buf text;               /* one copy of every field, wiped when freed; empty when borrowed */
    ecdn_tc3_signer *sg;         /* digest and key-chain contexts (no cache) */
    day_key day;                 /* the signing key of `date` */
    int has_day;                 /* day is set (not before the first signature) */
    char date[10];
};

static ecdn_tc3_prepared *prepared_new(int *rc)
{
    ecdn_tc3_prepared *p = (ecdn_tc3_prepared *)calloc(1, sizeof *p);
    *rc = ECDN_ENOMEM;
    if (p == NULL) return NULL;
    ecdn_buf_init(&p->text);
    if ((p->sg = ecdn_tc3_signer_new(0)) == NULL) {
        free(p);
        return NULL;
    }
    count_live(1);
    *rc = ECDN_OK;
    return p;
}

/* The signing key of this date: the day's, or derived now (once a day). */
static int prepared_key(ecdn_tc3_prepared *p, const char *date, const day_key **out)
{
    unsigned char stack[KEYBUF];
    ecdn_buf heap;
    const unsigned char *key;
    size_t klen;
    int rc = ECDN_OK;

    if (p->has_day && memcmp(p->date, date, 10) == 0) {
        *out = &p->day;
        return ECDN_OK;
    }
    ecdn_buf_init(&heap);
    key = tc3_key(p->q.secret_key, stack, &heap, &klen);
    /* The previous day's key goes first, whatever happens next. */
    p->has_day = 0;
    OPENSSL_cleanse(&p->day, sizeof p->day);
    if (key == NULL) rc = ECDN_ENOMEM;
    else if (derive_day_key(p->sg->mac, key, klen, date, p->q.service, &p->day)) rc = ECDN_ECRYPTO;
    else {
        p->has_day = 1;
        memcpy(p->date, date, 10);
        *out = &p->day;
    }
    if (key == stack) OPENSSL_cleanse(stack, klen);
    ecdn_buf_free(&heap);
    return rc;
}

#define PREPARED_NFIELDS 9

ecdn_tc3_prepared *ecdn_tc3_prepare(const ecdn_tc3_request *fields, int *rc, const char **bad)
{
    ecdn_tc3_prepared *p;
    size_t off[PREPARED_NFIELDS], i;

    if ((*rc = fields_check(fields, bad)) != ECDN_OK || (p = prepared_new(rc)) == NULL) return NULL;
    {
        const ecdn_str src[PREPARED_NFIELDS] = {
            fields->secret_id, fields->secret_key, fields->service, fields->host, fields->version,
            fields->region, fields->token, fields->language, fields->content_type };
        ecdn_str *dst[PREPARED_NFIELDS] = {
            &p->q.secret_id, &p->q.secret_key, &p->q.service, &p->q.host, &p->q.version,
            &p->q.region, &p->q.token, &p->q.language, &p->q.content_type };
        /* One buffer for all (it may move while it grows: pointers are set after). */
        for (i = 0; i < PREPARED_NFIELDS; i++) {
            off[i] = p->text.len;
            if (src[i].ptr) {
                ecdn_buf_add(&p->text, src[i].ptr, src[i].len);
                ecdn_buf_addc(&p->text, '\0');
            }
        }
        if (p->text.failed) {
            ecdn_tc3_prepared_free(p);
            *rc = ECDN_ENOMEM;
            return NULL;
        }
        for (i = 0; i < PREPARED_NFIELDS; i++) {
            dst[i]->ptr = src[i].ptr ? p->text.data + off[i] : NULL;
            dst[i]->len = src[i].ptr ? src[i].len : 0;
        }
    }
    p->q.sign_action = fields->sign_action;
    return p;
}

ecdn_tc3_prepared *ecdn_tc3_prepare_borrowed(const ecdn_tc3_request *fields, int *rc, const char **bad)
{
    ecdn_tc3_prepared *p;
    if ((*rc = fields_check(fields, bad)) != ECDN_OK || (p = prepared_new(rc)) == NULL) return NULL;
    p->q = *fields;
    p->q.action.ptr = p->q.payload.ptr = NULL;
    p->q.action.len = p->q.payload.len = 0;
    p->q.timestamp = 0;
    p->q.omit_debug = 0;
    return p;
}

const ecdn_tc3_request *ecdn_tc3_prepared_fields(const ecdn_tc3_prepared *p)
{
    return &p->q;
}

int ecdn_tc3_prepared_sign(ecdn_tc3_prepared *p, ecdn_str action, ecdn_str payload, long long timestamp,
                           int omit_debug, ecdn_tc3_result *r, const char **bad)
{
    ecdn_tc3_request q = p->q;
    int rc = call_check(action, payload, timestamp, bad);
    if (rc != ECDN_OK) return rc;
    q.action = action;
    q.payload = payload;
    q.timestamp = timestamp;
    q.omit_debug = omit_debug;
    rc = sign_checked(p->sg, p, &q, r);
    if (rc != ECDN_OK) r->nheaders = 0;
    return rc;
}

void ecdn_tc3_prepared_free(ecdn_tc3_prepared *p)
{
    if (p == NULL) return;
    count_live(-1);
    ecdn_tc3_signer_free(p->sg);
    ecdn_buf_free(&p->text);     /* wipes the copies (none when borrowed) */
    OPENSSL_cleanse(p, sizeof *p);
    free(p);
}

/* ---- v1 ---------------------------------------------------------------- */

void ecdn_v1_result_init(ecdn_v1_result *r)
{
    memset(r->signature, 0, sizeof r->signature);
    ecdn_buf_init(&r->string_to_sign);
    ecdn_buf_init(&r->query);
}

void ecdn_v1_result_free(ecdn_v1_result *r)
{
    ecdn_buf_free(&r->string_to_sign);
    ecdn_buf_free(&r->query);
    OPENSSL_cleanse(r->signature, sizeof r->signature);
}

static int str_eq(ecdn_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && memcmp(a.ptr, b, n) == 0;
}

/* Byte-wise ASCII order of names, as the service sorts them. */
static int param_cmp(const void *x, const void *y)
{
    const ecdn_param *a = x, *b = y;
    size_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
    int c = n ? memcmp(a->name.ptr, b->name.ptr, n) : 0;
    if (c) return c;
    return (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

/* Names the signer sets itself (or that select the algorithm): given in params
 * they would be signed one way and checked another. */
static int is_reserved(ecdn_str name)
{
    static const char *const RESERVED[] = { "Action", "Nonce", "SecretId", "Timestamp", "Version", "Region",
                                            "Token", "SignatureMethod", "Signature" };
    size_t i;
    for (i = 0; i < sizeof RESERVED / sizeof RESERVED[0]; i++)
        if (str_eq(name, RESERVED[i])) return 1;
    return 0;
}

static void push_param(ecdn_param *w, size_t *n, const char *name, ecdn_str value)
{
    w[*n].name = cstr(name);
    w[*n].value = value;
    (*n)++;
}

int ecdn_sign_v1(const ecdn_v1_request *q, ecdn_param *w, ecdn_v1_result *r, const char **bad)
{
    ecdn_str method = q->method.ptr ? q->method : cstr("GET");
    ecdn_str path = q->path.ptr ? q->path : cstr("/");
    char ts[24], nonce[24];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const EVP_MD *alg = EVP_sha1();
    ecdn_buf *s = &r->string_to_sign, *u = &r->query;
    size_t i, n = 0;

    *bad = NULL;
    if (check_field(q->secret_id, 1, 1, "secret_id", bad) ||
        check_field(q->secret_key, 1, 0, "secret_key", bad) ||
        check_field(q->host, 1, 1, "host", bad) ||
        check_field(q->action, 1, 0, "action", bad) ||
        check_field(q->version, 1, 0, "version", bad) ||
        check_field(q->region, 0, 0, "region", bad) ||
        check_field(q->token, 0, 0, "token", bad) ||
        check_field(path, 1, 1, "path", bad))
        return ECDN_EFIELD;
    if (!str_eq(method, "GET") && !str_eq(method, "POST")) { *bad = "method"; return ECDN_EFIELD; }
    if (path.ptr[0] != '/') { *bad = "path"; return ECDN_EFIELD; }
    if (q->signature_method.ptr) {
        if (str_eq(q->signature_method, "HmacSHA256")) alg = EVP_sha256();
        else if (!str_eq(q->signature_method, "HmacSHA1")) { *bad = "signature_method"; return ECDN_EFIELD; }
    }
    if (q->timestamp < 0 || q->timestamp > ECDN_MAX_TIMESTAMP) { *bad = "timestamp"; return ECDN_ERANGE; }
    if (q->nonce <= 0) { *bad = "nonce"; return ECDN_ERANGE; }
    if (q->secret_key.len > 0x7fffffff) { *bad = "secret_key"; return ECDN_ERANGE; }

    snprintf(ts, sizeof ts, "%lld", q->timestamp);
    snprintf(nonce, sizeof nonce, "%lld", q->nonce);
    for (i = 0; i < q->nparams; i++) {
        if (q->params[i].name.len == 0 || q->params[i].value.ptr == NULL || is_reserved(q->params[i].name)) {
            *bad = "params";
            return ECDN_EFIELD;
        }
        w[n++] = q->params[i];
    }
    push_param(w, &n, "Action", q->action);
    push_param(w, &n, "Nonce", cstr(nonce));
    push_param(w, &n, "SecretId", q->secret_id);
    push_param(w, &n, "Timestamp", cstr(ts));
    push_param(w, &n, "Version", q->version);
    if (q->region.len) push_param(w, &n, "Region", q->region);
    if (q->token.len) push_param(w, &n, "Token", q->token);
    if (q->signature_method.ptr) push_param(w, &n, "SignatureMethod", q->signature_method);
    qsort(w, n, sizeof *w, param_cmp);
    for (i = 1; i < n; i++)
        if (param_cmp(&w[i - 1], &w[i]) == 0) { *bad = "params"; return ECDN_EFIELD; } /* duplicate name */

    /* String to sign: raw values, as the service recomputes it. */
    ecdn_buf_addstr(s, method);
    ecdn_buf_addstr(s, q->host);
    ecdn_buf_addstr(s, path);
    ecdn_buf_addc(s, '?');
    for (i = 0; i < n; i++) {
        if (i) ecdn_buf_addc(s, '&');
        ecdn_buf_addstr(s, w[i].name);
        ecdn_buf_addc(s, '=');
        ecdn_buf_addstr(s, w[i].value);
    }
    if (s->failed) return ECDN_ENOMEM;

    if (!HMAC(alg, q->secret_key.ptr, (int)q->secret_key.len,
              (const unsigned char *)s->data, s->len, md, &mdlen))
        return ECDN_ECRYPTO;
    EVP_EncodeBlock((unsigned char *)r->signature, md, (int)mdlen);
    OPENSSL_cleanse(md, sizeof md);

    for (i = 0; i < n; i++) {
        if (i) ecdn_buf_addc(u, '&');
        ecdn_url_encode(u, w[i].name.ptr, w[i].name.len);
        ecdn_buf_addc(u, '=');
        ecdn_url_encode(u, w[i].value.ptr, w[i].value.len);
    }
    ecdn_buf_adds(u, "&Signature=");
    ecdn_url_encode(u, r->signature, strlen(r->signature));
    return u->failed ? ECDN_ENOMEM : ECDN_OK;
}
