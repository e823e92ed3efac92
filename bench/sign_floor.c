/* The floor for TC3 signing in C, beside the project's C signer, on the
 * inputs bench/sign.lua uses: a different one-URL payload (of 1,024) and
 * timestamp on every call, one key and service. CPU time of this process, in
 * batches: the rate is that of the fastest tenth of the batches.
 *   build/bench/sign_floor [seconds] [--tsv]
 * Cases:
 *   floor_fresh    the whole work of a signature with OpenSSL 3 done as
 *                  cheaply as the API allows: SHA-256 and HMAC fetched once,
 *                  contexts reused, texts built with memcpy, the key chain
 *                  derived anew every time;
 *   floor_cached   the same with the day's signing key derived once (a keyed
 *                  HMAC context re-initialised per signature);
 *   oneshot_fresh / oneshot_cached
 *                  the same work with the one-shot SHA256() and HMAC(), which
 *                  fetch the algorithm on every call (what src/sign.c did);
 *   ours_c         ecdn_sign_tc3 (src/sign.c: thread signer, cached key,
 *                  checks, headers, debug strings), and ours_c_nodebug with
 *                  omit_debug = 1: the C half of core.sign_tc3 without Lua. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include "sign.h"

#define NPAYLOADS 1024
#define T0 1795820000LL

static const char ID[] = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
static const char KEY[] = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
static const char HOST[] = "ecdn.tencentcloudapi.com";
static const char SERVICE[] = "ecdn";

static char payloads[NPAYLOADS][96];
static size_t payload_len[NPAYLOADS];
static volatile unsigned sink;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char H[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = H[in[i] >> 4];
        out[2 * i + 1] = H[in[i] & 15];
    }
}

static void utc_date(long long ts, char out[11])
{
    time_t t = (time_t)ts;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* ---- the floor with reused EVP contexts ------------------------------------ */

static EVP_MD *md_alg;
static EVP_MAC *mac_alg;
static EVP_MD_CTX *md;
static EVP_MAC_CTX *mac, *day_mac;
static char day_date[11];

static EVP_MAC_CTX *hmac_ctx(void)
{
    OSSL_PARAM p[2];
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(mac_alg);
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_end();
    if (m == NULL || !EVP_MAC_CTX_set_params(m, p)) abort();
    return m;
}

static void digest(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len;
    if (!EVP_DigestInit_ex2(md, md_alg, NULL) || !EVP_DigestUpdate(md, p, n) || !EVP_DigestFinal_ex(md, out, &len))
        abort();
}

static void mac_once(EVP_MAC_CTX *m, const void *k, size_t kn, const void *msg, size_t mn, unsigned char out[32])
{
    size_t len;
    if (!EVP_MAC_init(m, k, kn, NULL) || !EVP_MAC_update(m, msg, mn) || !EVP_MAC_final(m, out, &len, 32)) abort();
}

static void derive(EVP_MAC_CTX *m, const char *date, unsigned char k3[32])
{
    unsigned char key[3 + sizeof KEY], k1[32], k2[32];
    memcpy(key, "TC3", 3);
    memcpy(key + 3, KEY, sizeof KEY - 1);
    mac_once(m, key, 3 + sizeof KEY - 1, date, 10, k1);
    mac_once(m, k1, 32, SERVICE, sizeof SERVICE - 1, k2);
    mac_once(m, k2, 32, "tc3_request", 11, k3);
}

#define PUT(s, len) (memcpy(d, (s), (len)), d += (len))
#define PUTL(lit) PUT(lit, sizeof(lit) - 1)

/* Canonical request and string to sign with memcpy; returns the sts length. */
static size_t texts(const char *payload_hex, long long ts, const char *date, char *sts,
                    void (*hash)(const void *, size_t, unsigned char *))
{
    char creq[256], digits[24], *d = creq;
    unsigned char h[32];
    int n = 0;
    PUTL("POST\n/\n\ncontent-type:application/json\nhost:");
    PUTL(HOST);
    PUTL("\n\ncontent-type;host\n");
    PUT(payload_hex, 64);
    hash(creq, (size_t)(d - creq), h);
    do { digits[n++] = (char)('0' + ts % 10); ts /= 10; } while (ts > 0);
    d = sts;
    PUTL("TC3-HMAC-SHA256\n");
    while (n > 0) *d++ = digits[--n];
    *d++ = '\n';
    PUT(date, 10);
    *d++ = '/';
    PUTL(SERVICE);
    PUTL("/tc3_request\n");
    hex(h, 32, d);
    return (size_t)(d - sts) + 64;
}

static char last_sig[65];

static void authorization(const char *date, const char *sig_hex, char *out)
{
    char *d = out;
    PUTL("TC3-HMAC-SHA256 Credential=");
    PUTL(ID);
    *d++ = '/';
    PUT(date, 10);
    *d++ = '/';
    PUTL(SERVICE);
    PUTL("/tc3_request, SignedHeaders=content-type;host, Signature=");
    PUT(sig_hex, 64);
    *d = '\0';
    memcpy(last_sig, sig_hex, 64);
}

static void evp_hash(const void *p, size_t n, unsigned char *out) { digest(p, n, out); }

static void floor_sign(long i, int cached)
{
    long long ts = T0 + i;
    char date[11], ph[64], sts[160], sig_hex[64], auth[200];
    unsigned char h[32], k3[32], sig[32];
    size_t slen, len;
    const char *p = payloads[i % NPAYLOADS];

    utc_date(ts, date);
    digest(p, payload_len[i % NPAYLOADS], h);
    hex(h, 32, ph);
    slen = texts(ph, ts, date, sts, evp_hash);
    if (cached) {
        if (memcmp(date, day_date, 10) != 0) {
            derive(mac, date, k3);
            if (!EVP_MAC_init(day_mac, k3, 32, NULL)) abort();
            memcpy(day_date, date, 11);
        }
        if (!EVP_MAC_init(day_mac, NULL, 0, NULL) || !EVP_MAC_update(day_mac, (unsigned char *)sts, slen) ||
            !EVP_MAC_final(day_mac, sig, &len, 32))
            abort();
    } else {
        derive(mac, date, k3);
        mac_once(mac, k3, 32, sts, slen, sig);
    }
    hex(sig, 32, sig_hex);
    authorization(date, sig_hex, auth);
    sink += (unsigned char)auth[180];
}

static void floor_fresh(long i) { floor_sign(i, 0); }
static void floor_cached(long i) { floor_sign(i, 1); }

/* ---- one-shot SHA256() / HMAC() ------------------------------------------- */

static void oneshot_hash(const void *p, size_t n, unsigned char *out) { SHA256(p, n, out); }

static void oneshot_hmac(const void *k, size_t kn, const void *m, size_t mn, unsigned char out[32])
{
    unsigned int len;
    if (!HMAC(EVP_sha256(), k, (int)kn, m, mn, out, &len)) abort();
}

static unsigned char oneshot_day_key[32];
static char oneshot_day[11];

static void oneshot_sign(long i, int cached)
{
    long long ts = T0 + i;
    char date[11], ph[64], sts[160], sig_hex[64], auth[200];
    unsigned char h[32], k1[32], k2[32], k3[32], sig[32], key[3 + sizeof KEY];
    size_t slen;
    const char *p = payloads[i % NPAYLOADS];

    utc_date(ts, date);
    SHA256((const unsigned char *)p, payload_len[i % NPAYLOADS], h);
    hex(h, 32, ph);
    slen = texts(ph, ts, date, sts, oneshot_hash);
    if (!cached || memcmp(date, oneshot_day, 10) != 0) {
        memcpy(key, "TC3", 3);
        memcpy(key + 3, KEY, sizeof KEY - 1);
        oneshot_hmac(key, 3 + sizeof KEY - 1, date, 10, k1);
        oneshot_hmac(k1, 32, SERVICE, sizeof SERVICE - 1, k2);
        oneshot_hmac(k2, 32, "tc3_request", 11, k3);
        memcpy(oneshot_day_key, k3, 32);
        memcpy(oneshot_day, date, 11);
    }
    oneshot_hmac(oneshot_day_key, 32, sts, slen, sig);
    hex(sig, 32, sig_hex);
    authorization(date, sig_hex, auth);
    sink += (unsigned char)auth[180];
}

static void oneshot_fresh(long i) { oneshot_sign(i, 0); }
static void oneshot_cached(long i) { oneshot_sign(i, 1); }

/* ---- ours: ecdn_sign_tc3 ---------------------------------------------------- */

static ecdn_tc3_result result;

static ecdn_str S(const char *p, size_t n)
{
    ecdn_str s;
    s.ptr = p;
    s.len = n;
    return s;
}

static void ours(long i, int omit_debug)
{
    ecdn_tc3_request q;
    const char *bad;
    memset(&q, 0, sizeof q);
    q.secret_id = S(ID, sizeof ID - 1);
    q.secret_key = S(KEY, sizeof KEY - 1);
    q.service = S(SERVICE, sizeof SERVICE - 1);
    q.host = S(HOST, sizeof HOST - 1);
    q.action = S("PurgeUrlsCache", 14);
    q.version = S("2019-10-12", 10);
    q.payload = S(payloads[i % NPAYLOADS], payload_len[i % NPAYLOADS]);
    q.timestamp = T0 + i;
    q.omit_debug = omit_debug;
    if (ecdn_sign_tc3(&q, &result, &bad) != ECDN_OK) abort();
    sink += (unsigned char)result.signature[7];
}

static void ours_c(long i) { ours(i, 0); }
static void ours_c_nodebug(long i) { ours(i, 1); }

/* ---- driver ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Batches of 5,000 (milliseconds each) for `seconds` of CPU time; the rate is that of the fastest
 * tenth of the batches (the machine is shared: an interrupted batch says
 * nothing about the code). */
static void run(const char *key, const char *name, void (*fn)(long), double seconds, int tsv)
{
    static double samples[200000];
    size_t ns = 0;
    long n = 0, k;
    double t0 = cpu_now(), b0 = t0, now, rate;
    do {
        for (k = 0; k < 5000; k++) fn(++n);
        now = cpu_now();
        if (ns < sizeof samples / sizeof samples[0]) samples[ns++] = now - b0;
        b0 = now;
    } while (now - t0 < seconds);
    qsort(samples, ns, sizeof samples[0], cmp_double);
    rate = 5000 / samples[ns / 10];
    if (tsv) printf("%s\t%.0f\n", key, rate);
    else printf("%-44s %9.0f signatures/s  %6.2f us each\n", name, rate, 1e6 / rate);
}

/* Known answer: official vector A through the floor's own key chain. */
static void self_check(void)
{
    unsigned char k3[32], sig[32];
    static const char sts[] = "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
                              "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031";
    unsigned char key[3 + sizeof KEY], k1[32], k2[32];
    char out[65];
    memcpy(key, "TC3", 3);
    memcpy(key + 3, KEY, sizeof KEY - 1);
    mac_once(mac, key, 3 + sizeof KEY - 1, "2019-02-25", 10, k1);
    mac_once(mac, k1, 32, "cvm", 3, k2);
    mac_once(mac, k2, 32, "tc3_request", 11, k3);
    mac_once(mac, k3, 32, sts, sizeof sts - 1, sig);
    hex(sig, 32, out);
    out[64] = '\0';
    if (strcmp(out, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168") != 0) {
        fprintf(stderr, "sign_floor: vector A does not verify: %s\n", out);
        exit(1);
    }
}

/* Every case signs the same inputs to the same signature (so the floor does
 * the same work as the signer, no less). */
static void cross_check(void)
{
    static void (*const fns[])(long) = { floor_fresh, floor_cached, oneshot_fresh, oneshot_cached };
    long i;
    size_t k;
    for (i = 1; i <= 3; i++) {
        ours(i * 40000, 1);
        for (k = 0; k < sizeof fns / sizeof fns[0]; k++) {
            last_sig[0] = '\0';
            fns[k](i * 40000);
            if (memcmp(last_sig, result.signature, 64) != 0) {
                fprintf(stderr, "sign_floor: case %zu disagrees with ecdn_sign_tc3\n", k);
                exit(1);
            }
        }
    }
}

int main(int argc, char **argv)
{
    double seconds = 1;
    int tsv = 0, i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tsv") == 0) tsv = 1;
        else seconds = atof(argv[i]);
    }
    for (i = 0; i < NPAYLOADS; i++)
        payload_len[i] = (size_t)sprintf(payloads[i], "{\"Urls\":[\"https://www.example.com/static/%06d-1.jpg\"]}", i);
    md_alg = EVP_MD_fetch(NULL, "SHA256", NULL);
    mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    md = EVP_MD_CTX_new();
    if (md_alg == NULL || mac_alg == NULL || md == NULL) abort();
    mac = hmac_ctx();
    day_mac = hmac_ctx();
    self_check();
    ecdn_tc3_result_init(&result);
    cross_check();

    run("floor_fresh", "C floor, key chain per signature", floor_fresh, seconds, tsv);
    run("floor_cached", "C floor, day key cached", floor_cached, seconds, tsv);
    run("oneshot_fresh", "C one-shot SHA256()/HMAC(), chain each", oneshot_fresh, seconds, tsv);
    run("oneshot_cached", "C one-shot SHA256()/HMAC(), day key cached", oneshot_cached, seconds, tsv);
    run("ours_c", "ecdn_sign_tc3 (C API, debug strings)", ours_c, seconds, tsv);
    run("ours_c_nodebug", "ecdn_sign_tc3 (C API, omit_debug)", ours_c_nodebug, seconds, tsv);

    ecdn_tc3_result_free(&result);
    EVP_MAC_CTX_free(mac);
    EVP_MAC_CTX_free(day_mac);
    EVP_MD_CTX_free(md);
    EVP_MAC_free(mac_alg);
    EVP_MD_free(md_alg);
    return sink == 12345 ? 1 : 0;
}
