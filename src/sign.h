/* Tencent Cloud API request signing: TC3-HMAC-SHA256 (v3) and the older
 * HmacSHA1/HmacSHA256 (v1). No Lua here, so it can be fuzzed and reused alone.
 * All inputs are borrowed; results own their buffers (free with *_free). */
#ifndef ECDN_SIGN_H
#define ECDN_SIGN_H

#include "buf.h"

enum {
    ECDN_OK = 0,
    ECDN_ENOMEM,     /* allocation failed */
    ECDN_EFIELD,     /* a field is missing, empty or holds a forbidden byte */
    ECDN_ERANGE,     /* timestamp or nonce out of range */
    ECDN_ECRYPTO     /* OpenSSL failed */
};

#define ECDN_MAX_TIMESTAMP 253402300799LL /* 9999-12-31T23:59:59Z */

/* ---- TC3-HMAC-SHA256 ---------------------------------------------------- */

typedef struct {
    ecdn_str secret_id, secret_key, service, host, action, version;
    ecdn_str payload;                 /* hashed exactly as given */
    ecdn_str region, token, language; /* optional: ptr NULL = not sent */
    ecdn_str content_type;            /* optional: default application/json */
    long long timestamp;              /* unix seconds, UTC */
    int sign_action;                  /* also sign x-tc-action */
} ecdn_tc3_request;

typedef struct {
    const char *name;                 /* as sent, e.g. "X-TC-Action" */
    ecdn_str value;
} ecdn_header;

#define ECDN_TC3_MAX_HEADERS 9

typedef struct {
    char date[11];                    /* YYYY-MM-DD, UTC */
    char timestamp[24];
    char signature[65];               /* lower-case hex */
    ecdn_buf authorization;
    ecdn_buf canonical_request;
    ecdn_buf string_to_sign;
    ecdn_header headers[ECDN_TC3_MAX_HEADERS]; /* values borrow from request and result */
    size_t nheaders;
} ecdn_tc3_result;

void ecdn_tc3_result_init(ecdn_tc3_result *r);
void ecdn_tc3_result_free(ecdn_tc3_result *r);
/* On ECDN_EFIELD/ECDN_ERANGE, *bad_field names the field (never its value). */
int ecdn_sign_tc3(const ecdn_tc3_request *req, ecdn_tc3_result *r, const char **bad_field);

/* ---- Signature v1 ------------------------------------------------------- */

typedef struct {
    ecdn_str name, value;
} ecdn_param;

typedef struct {
    ecdn_str secret_id, secret_key, host, action, version;
    ecdn_str method;                  /* "GET" (default when ptr NULL) or "POST" */
    ecdn_str path;                    /* default "/" */
    ecdn_str region, token;           /* optional */
    ecdn_str signature_method;        /* optional: "HmacSHA1" | "HmacSHA256"; sent only when given */
    long long timestamp, nonce;
    const ecdn_param *params;         /* already flattened, e.g. "Urls.0" */
    size_t nparams;
} ecdn_v1_request;

typedef struct {
    char signature[64];               /* base64 */
    ecdn_buf string_to_sign;
    ecdn_buf query;                   /* RFC 3986 encoded, ends with &Signature=... */
} ecdn_v1_result;

void ecdn_v1_result_init(ecdn_v1_result *r);
void ecdn_v1_result_free(ecdn_v1_result *r);
/* work must have room for nparams + 8 entries (scratch for sorting). */
int ecdn_sign_v1(const ecdn_v1_request *req, ecdn_param *work, ecdn_v1_result *r,
                 const char **bad_field);

/* Helpers shared with other parts of the core. */
void ecdn_utc_date(long long ts, char out[11]);
int ecdn_url_encode(ecdn_buf *b, const char *p, size_t n); /* RFC 3986, upper-case hex */
int ecdn_has_header_breaker(ecdn_str s);                   /* CR, LF or NUL inside */

#endif
