/* The libcurl transport: a request (method, URL, headers, body) in, a raw
 * response (status, headers, body) or a classified network failure out.
 * One easy handle and one multi handle per transport, reused, so the
 * connection and the TLS session stay alive between requests.
 *
 * Honest outcomes:
 * - attempts: how many times the request was started on a connection; a
 *   request whose bytes all went out is never written again unless the
 *   caller allows it (resend), so a purge cannot be applied twice silently.
 * - sent: the request started going out at least once (headers and body
 *   leave in one write), so the service may have acted on it; false only
 *   when it certainly did not (refused, DNS, TLS, connect timeout).
 * - fork: a transport used in another process than the one that opened its
 *   connections never touches them (no bytes, no TLS close_notify): it
 *   detaches them onto /dev/null and starts afresh.
 * No Lua here: every failure comes back as a value. */
#ifndef ECDN_HTTP_H
#define ECDN_HTTP_H

#include "buf.h"
#include "sign.h"

typedef struct ecdn_http ecdn_http;

typedef struct {
    long timeout_ms;          /* whole request */
    long connect_timeout_ms;
    int verify;               /* TLS peer and host verification */
    const char *cafile;       /* optional CA bundle (PEM) */
    const char *proxy;        /* optional proxy URL; "" = none, NULL = environment */
    size_t max_body;          /* 0 = 16 MiB */
    size_t max_headers;       /* 0 = 64 KiB, all header lines of the response */
} ecdn_http_config;

typedef struct {
    const char *method;       /* "POST" or "GET" */
    const char *url;          /* NUL-terminated */
    const ecdn_header *headers; /* values must not hold CR/LF/NUL */
    size_t nheaders;
    const char *body;         /* POST only */
    size_t len;
    int resend;               /* may a fully written request be written again? */
    int headers_checked;      /* 1: the values are known free of CR/LF/NUL (the signer checked
                                 what they are made of); 0: the transport checks them */
} ecdn_http_request;

enum {
    ECDN_NET_OK = 0,
    ECDN_NET_CURL,            /* curl failed: curl_code, error */
    ECDN_NET_BODY_TOO_BIG,    /* response body over max_body (status is set) */
    ECDN_NET_HEADERS_TOO_BIG, /* response headers over max_headers */
    ECDN_NET_PARTIAL_HEADERS, /* the connection closed inside the headers */
    ECDN_NET_NOT_RESENT,      /* the connection died after the whole request went out */
    ECDN_NET_INTERRUPTED,     /* SIGINT, with ecdn_http_catch_interrupts() on */
    ECDN_NET_BAD_REQUEST      /* headers could not be built (CR/LF/NUL, memory) */
};

typedef struct {
    long status;              /* HTTP status; 0 when none arrived */
    ecdn_buf headers;         /* the final response's header lines, CRLF-separated */
    ecdn_buf body;            /* wiped on free */
    int attempts;
    int sent;
    int failure;              /* ECDN_NET_* */
    int curl_code;            /* CURLcode of the failure, 0 if none */
    int tls;                  /* the failure is about TLS */
    int retryable;            /* may the same request succeed later? */
    char error[256];          /* one line, never quotes a proxy URL */
} ecdn_http_result;

/* curl_global_init, once, when the module loads. 0 on success. */
int ecdn_http_global_init(void);

/* Returns NULL and fills err when curl refuses the configuration. */
ecdn_http *ecdn_http_new(const ecdn_http_config *cfg, char *err, size_t errlen);
void ecdn_http_free(ecdn_http *h);   /* NULL is fine; fork-safe */

void ecdn_http_result_init(ecdn_http_result *r);
void ecdn_http_result_free(ecdn_http_result *r);

/* Returns 0 when an HTTP response arrived whole (any status), -1 otherwise. */
int ecdn_http_perform(ecdn_http *h, const ecdn_http_request *q, ecdn_http_result *r);

/* ---- concurrent requests over the same connection pool ------------------- */

#define ECDN_HTTP_MAX_ACTIVE 64

/* Starts q without waiting (the transport copies the URL, headers and body).
 * Returns an id >= 0, or -1 with err filled (nothing was sent). */
int ecdn_http_start(ecdn_http *h, const ecdn_http_request *q, char *err, size_t errlen);

/* Called once for each finished request: rc 0 = a whole response (any
 * status), -1 = a failure; r is valid during the call only. */
typedef void (*ecdn_http_done)(void *ud, int id, int rc, ecdn_http_result *r);

/* Drives the started requests for up to timeout_ms; returns how many
 * finished (each reported through done), 0 on timeout, -1 on a curl failure.
 * SIGINT (with ecdn_http_catch_interrupts) finishes every request in flight
 * as interrupted. A forked child reports the parent's requests as failed
 * with sent = 1. */
int ecdn_http_wait(ecdn_http *h, long timeout_ms, ecdn_http_done done, void *ud);

int ecdn_http_active(const ecdn_http *h);   /* requests started and not yet reported */

/* "CURLE_COULDNT_CONNECT" etc.; the failure's name for the other ECDN_NET_*. */
const char *ecdn_http_failure_name(const ecdn_http_result *r, char tmp[32]);

/* SIGINT sets a flag that ends the request in flight within milliseconds
 * (ECDN_NET_INTERRUPTED) and every later one at once; SIGPIPE is ignored
 * (writes to a closed pipe fail with EPIPE instead). For command-line tools
 * only: a library must not take the host's signals. 0 on success. */
int ecdn_http_catch_interrupts(void);
int ecdn_http_interrupted(void);

#endif
