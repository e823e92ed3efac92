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
    int omit_debug;                   /* 1: leave canonical_request and string_to_sign empty in the
                                         result (less work); 0 (the default of a zeroed request): fill them */
} ecdn_tc3_request;

typedef struct {
    const char *name;                 /* as sent, e.g. "X-TC-Action" */
    ecdn_str value;
} ecdn_header;

#define ECDN_TC3_MAX_HEADERS 9

/* headers[].name points into this table (pointer comparison is enough), in
 * this order; the last three only when given and non-empty. */
enum { ECDN_TC3_H_AUTHORIZATION, ECDN_TC3_H_CONTENT_TYPE, ECDN_TC3_H_HOST, ECDN_TC3_H_ACTION,
       ECDN_TC3_H_TIMESTAMP, ECDN_TC3_H_VERSION, ECDN_TC3_H_REGION, ECDN_TC3_H_TOKEN, ECDN_TC3_H_LANGUAGE };
extern const char *const ecdn_tc3_header_names[ECDN_TC3_MAX_HEADERS];

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
/* Wipes the result and keeps its memory for the next signature. */
void ecdn_tc3_result_clear(ecdn_tc3_result *r);
/* Signs with the calling thread's signer (below), made on first use. The
 * result's buffers are emptied first, so a result may be reused without a
 * free in between. On ECDN_EFIELD/ECDN_ERANGE, *bad_field names the field
 * (never its value). */
int ecdn_sign_tc3(const ecdn_tc3_request *req, ecdn_tc3_result *r, const char **bad_field);

/* A TC3 signer: SHA-256 and HMAC fetched from OpenSSL once, digest and MAC
 * contexts reused, and a bounded cache of derived signing keys per (secret
 * key, UTC date, service). An entry is found by a SHA-256 fingerprint of
 * "TC3" + secret key (the key itself is never kept) and the exact date and
 * service, so a key or date change always derives afresh; a newer date for
 * the same key and service replaces the older entry. Evicted, cleared and
 * freed entries are wiped. Not thread-safe: one signer per thread. Results
 * are never memoised: every call hashes its payload and signs anew. */
typedef struct ecdn_tc3_signer ecdn_tc3_signer;

typedef struct {
    unsigned long long hits, misses, evictions; /* evictions: entries of another key/service pushed out */
    unsigned long long replaced;                /* entries replaced by a newer date of the same key/service */
    size_t entries, capacity;
} ecdn_tc3_cache_stats;

#define ECDN_TC3_CACHE_DEFAULT 8
#define ECDN_TC3_CACHE_MAX 1024

/* capacity 0: no cache (the key chain is derived on every call). NULL when
 * out of memory or OpenSSL lacks SHA-256/HMAC. */
ecdn_tc3_signer *ecdn_tc3_signer_new(size_t capacity);
void ecdn_tc3_signer_free(ecdn_tc3_signer *s);     /* wipes; NULL is fine */
void ecdn_tc3_signer_clear(ecdn_tc3_signer *s);    /* wipes every cached key; counters stay */
/* Wipes the entries derived from this secret key (e.g. when a client drops it). */
void ecdn_tc3_signer_forget(ecdn_tc3_signer *s, ecdn_str secret_key);
void ecdn_tc3_signer_stats(const ecdn_tc3_signer *s, ecdn_tc3_cache_stats *out);
int ecdn_tc3_signer_sign(ecdn_tc3_signer *s, const ecdn_tc3_request *req, ecdn_tc3_result *r,
                         const char **bad_field);

/* The calling thread's signer (ECDN_TC3_CACHE_DEFAULT entries), made on first
 * use and wiped when the thread ends, when the library is unloaded or at
 * exit. NULL when it cannot be made (ecdn_sign_tc3 then signs with a
 * temporary one). */
ecdn_tc3_signer *ecdn_tc3_thread_signer(void);
/* Wipes what the calling thread's signer derived from this secret key
 * (core.sign_cache_forget); makes no signer. */
void ecdn_tc3_forget_key(ecdn_str secret_key);

/* A prepared signer: the fields of one account and endpoint (every field of
 * ecdn_tc3_request but action, payload, timestamp and omit_debug) copied
 * and checked once, and the signing key of the last UTC date used kept
 * ready for HMAC (its two blocks): a signature then hashes its payload and signs
 * anew with no lookup. A date change derives the day's key afresh; the
 * fields (the key among them) never change: prepare another signer for new
 * credentials. Freeing wipes the copies and the day key. Not thread-safe. */
typedef struct ecdn_tc3_prepared ecdn_tc3_prepared;

/* NULL with *rc = ECDN_EFIELD (*bad_field names it) or ECDN_ENOMEM. */
ecdn_tc3_prepared *ecdn_tc3_prepare(const ecdn_tc3_request *fields, int *rc, const char **bad_field);
/* The same without copies: the fields' bytes are borrowed, and must stay
 * alive and unchanged until the signer is freed (a holder that owns them
 * and frees the signer whenever one changes: one copy of the key, not two). */
ecdn_tc3_prepared *ecdn_tc3_prepare_borrowed(const ecdn_tc3_request *fields, int *rc, const char **bad_field);
/* As ecdn_sign_tc3 with the prepared fields and these three. */
int ecdn_tc3_prepared_sign(ecdn_tc3_prepared *p, ecdn_str action, ecdn_str payload, long long timestamp,
                           int omit_debug, ecdn_tc3_result *r, const char **bad_field);
/* The prepared fields (borrowed from p; action, payload and timestamp empty). */
const ecdn_tc3_request *ecdn_tc3_prepared_fields(const ecdn_tc3_prepared *p);
void ecdn_tc3_prepared_free(ecdn_tc3_prepared *p); /* wipes; NULL is fine */
/* Prepared signers made and not yet freed, in the whole process (for tests). */
long ecdn_tc3_prepared_live(void);

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
