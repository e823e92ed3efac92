#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static const char HEX[] = "0123456789abcdef";

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
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

int ecdn_has_header_breaker(ecdn_str s)
{
    size_t i;
    for (i = 0; i < s.len; i++)
        if (s.ptr[i] == '\r' || s.ptr[i] == '\n' || s.ptr[i] == '\0') return 1;
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

static int sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (SHA256((const unsigned char *)p, n, md) == NULL) return -1;
    hex_encode(md, sizeof md, out);
    return 0;
}

static int hmac256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    unsigned int olen = 0;
    if (klen > 0x7fffffff) return -1;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &olen) ? 0 : -1;
}

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

static ecdn_str cstr(const char *s)
{
    ecdn_str r;
    r.ptr = s;
    r.len = strlen(s);
    return r;
}

static void add_header(ecdn_tc3_result *r, const char *name, ecdn_str value)
{
    r->headers[r->nheaders].name = name;
    r->headers[r->nheaders].value = value;
    r->nheaders++;
}

int ecdn_sign_tc3(const ecdn_tc3_request *q, ecdn_tc3_result *r, const char **bad)
{
    static const char SCOPE_TAIL[] = "/tc3_request";
    ecdn_str ct = q->content_type.ptr ? q->content_type : cstr("application/json");
    const char *signed_headers = q->sign_action ? "content-type;host;x-tc-action" : "content-type;host";
    char payload_hash[65], creq_hash[65];
    unsigned char k1[32], k2[32], k3[32], sig[32];
    ecdn_buf key;
    ecdn_buf *c = &r->canonical_request, *s = &r->string_to_sign, *a = &r->authorization;
    size_t i;
    int rc = ECDN_OK;

    *bad = NULL;
    if (check_field(q->secret_id, 1, 1, "secret_id", bad) ||
        check_field(q->secret_key, 1, 0, "secret_key", bad) ||
        check_field(q->service, 1, 1, "service", bad) ||
        check_field(q->host, 1, 1, "host", bad) ||
        check_field(q->action, 1, 1, "action", bad) ||
        check_field(q->version, 1, 1, "version", bad) ||
        check_field(q->region, 0, 1, "region", bad) ||
        check_field(q->token, 0, 1, "token", bad) ||
        check_field(q->language, 0, 1, "language", bad) ||
        check_field(ct, 1, 1, "content_type", bad))
        return ECDN_EFIELD;
    if (q->payload.ptr == NULL && q->payload.len != 0) { *bad = "payload"; return ECDN_EFIELD; }
    if (q->timestamp < 0 || q->timestamp > ECDN_MAX_TIMESTAMP) { *bad = "timestamp"; return ECDN_ERANGE; }

    ecdn_utc_date(q->timestamp, r->date);
    snprintf(r->timestamp, sizeof r->timestamp, "%lld", q->timestamp);

    /* Canonical request: values as the SDKs send them; x-tc-action lower-cased. */
    if (sha256_hex(q->payload.ptr ? q->payload.ptr : "", q->payload.len, payload_hash)) return ECDN_ECRYPTO;
    ecdn_buf_adds(c, "POST\n/\n\ncontent-type:");
    ecdn_buf_addstr(c, ct);
    ecdn_buf_adds(c, "\nhost:");
    ecdn_buf_addstr(c, q->host);
    ecdn_buf_addc(c, '\n');
    if (q->sign_action) {
        ecdn_buf_adds(c, "x-tc-action:");
        for (i = 0; i < q->action.len; i++) {
            char ch = q->action.ptr[i];
            ecdn_buf_addc(c, (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch);
        }
        ecdn_buf_addc(c, '\n');
    }
    ecdn_buf_addc(c, '\n');
    ecdn_buf_adds(c, signed_headers);
    ecdn_buf_addc(c, '\n');
    ecdn_buf_adds(c, payload_hash);
    if (c->failed) return ECDN_ENOMEM;

    if (sha256_hex(c->data, c->len, creq_hash)) return ECDN_ECRYPTO;
    ecdn_buf_adds(s, "TC3-HMAC-SHA256\n");
    ecdn_buf_adds(s, r->timestamp);
    ecdn_buf_addc(s, '\n');
    ecdn_buf_adds(s, r->date);
    ecdn_buf_addc(s, '/');
    ecdn_buf_addstr(s, q->service);
    ecdn_buf_adds(s, SCOPE_TAIL);
    ecdn_buf_addc(s, '\n');
    ecdn_buf_adds(s, creq_hash);
    if (s->failed) return ECDN_ENOMEM;

    /* Key chain; every intermediate key is wiped before returning. */
    ecdn_buf_init(&key);
    ecdn_buf_adds(&key, "TC3");
    ecdn_buf_addstr(&key, q->secret_key);
    if (key.failed) rc = ECDN_ENOMEM;
    else if (hmac256(key.data, key.len, r->date, 10, k1) ||
             hmac256(k1, 32, q->service.ptr, q->service.len, k2) ||
             hmac256(k2, 32, "tc3_request", 11, k3) ||
             hmac256(k3, 32, s->data, s->len, sig))
        rc = ECDN_ECRYPTO;
    ecdn_buf_free(&key);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    OPENSSL_cleanse(k3, sizeof k3);
    if (rc != ECDN_OK) return rc;
    hex_encode(sig, sizeof sig, r->signature);
    OPENSSL_cleanse(sig, sizeof sig);

    ecdn_buf_adds(a, "TC3-HMAC-SHA256 Credential=");
    ecdn_buf_addstr(a, q->secret_id);
    ecdn_buf_addc(a, '/');
    ecdn_buf_adds(a, r->date);
    ecdn_buf_addc(a, '/');
    ecdn_buf_addstr(a, q->service);
    ecdn_buf_adds(a, SCOPE_TAIL);
    ecdn_buf_adds(a, ", SignedHeaders=");
    ecdn_buf_adds(a, signed_headers);
    ecdn_buf_adds(a, ", Signature=");
    ecdn_buf_adds(a, r->signature);
    if (a->failed) return ECDN_ENOMEM;

    r->nheaders = 0;
    {
        ecdn_str auth;
        auth.ptr = a->data;
        auth.len = a->len;
        add_header(r, "Authorization", auth);
    }
    add_header(r, "Content-Type", ct);
    add_header(r, "Host", q->host);
    add_header(r, "X-TC-Action", q->action);
    add_header(r, "X-TC-Timestamp", cstr(r->timestamp));
    add_header(r, "X-TC-Version", q->version);
    /* An empty optional value is not sent, as the SDKs do (curl would drop it anyway). */
    if (q->region.len) add_header(r, "X-TC-Region", q->region);
    if (q->token.len) add_header(r, "X-TC-Token", q->token);
    if (q->language.len) add_header(r, "X-TC-Language", q->language);
    return ECDN_OK;
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
