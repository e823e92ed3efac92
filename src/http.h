/* The libcurl core: one easy handle per client, reused for every request so
 * the connection (and TLS session) stays alive. No Lua here: every failure
 * comes back as a value, so no Lua error can ever unwind through curl. */
#ifndef ECDN_HTTP_H
#define ECDN_HTTP_H

#include "buf.h"
#include "sign.h"

typedef struct ecdn_http ecdn_http;

typedef struct {
    const char *url;          /* "http(s)://host[:port]/", NUL-terminated */
    long timeout_ms;          /* whole request */
    long connect_timeout_ms;
    int verify;               /* TLS peer and host verification */
    const char *cafile;       /* optional CA bundle (PEM) */
    const char *proxy;        /* optional proxy URL */
    size_t max_body;          /* larger responses fail with CURLE_WRITE_ERROR */
} ecdn_http_config;

typedef struct {
    long status;              /* HTTP status; 0 when no response arrived */
    ecdn_buf body;            /* response body (wiped on free) */
    int curl_code;            /* CURLcode; 0 when a response arrived */
    char error[256];          /* curl's message when curl_code != 0 */
} ecdn_http_result;

/* Returns NULL and fills err when curl refuses the configuration. */
ecdn_http *ecdn_http_new(const ecdn_http_config *cfg, char *err, size_t errlen);
void ecdn_http_free(ecdn_http *h);   /* NULL is fine */

void ecdn_http_result_init(ecdn_http_result *r);
void ecdn_http_result_free(ecdn_http_result *r);

/* POSTs body to the configured URL with the given headers ("Name: value";
 * values must not hold CR/LF/NUL). Returns 0 when an HTTP response arrived
 * (any status), -1 otherwise (r->curl_code, r->error say why). */
int ecdn_http_post(ecdn_http *h, const ecdn_header *headers, size_t nheaders,
                   const char *body, size_t len, ecdn_http_result *r);

/* "CURLE_COULDNT_CONNECT" etc.; "CURLE_<n>" style names for the rest. */
const char *ecdn_curl_code_name(int code, char tmp[32]);

#endif
