#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

struct ecdn_http {
    CURL *curl;
    size_t max_body;
    char errbuf[CURL_ERROR_SIZE];
    int has_proxy;
};

typedef struct {
    ecdn_buf *body;
    size_t max;
    int too_big;
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sink *s = (sink *)ud;
    size_t len = size * n;
    if (len > s->max || s->body->len > s->max - len) { /* curl: CURLE_WRITE_ERROR */
        s->too_big = 1;
        return 0;
    }
    if (ecdn_buf_add(s->body, p, len) != 0) return 0;
    return len;
}

/* Whether curl may take a proxy from the environment (the variables it reads). */
static int env_proxy(void)
{
    static const char *const VARS[] = { "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
    size_t i;
    for (i = 0; i < sizeof VARS / sizeof VARS[0]; i++) {
        const char *v = getenv(VARS[i]);
        if (v && v[0]) return 1;
    }
    return 0;
}

static int global_ready(void)
{
    static int done = 0;
    /* Reference counted by curl and thread-safe since 7.84; done once here. */
    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) done = 1;
    return done;
}

#define SET(opt, val) \
    do { what = #opt; if ((rc = curl_easy_setopt(c, opt, val)) != CURLE_OK) goto fail; } while (0)

ecdn_http *ecdn_http_new(const ecdn_http_config *cfg, char *err, size_t errlen)
{
    ecdn_http *h;
    CURL *c;
    CURLcode rc = CURLE_OK;
    const char *what = "";

    if (!global_ready()) {
        snprintf(err, errlen, "curl_global_init failed");
        return NULL;
    }
    h = (ecdn_http *)calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c = h->curl = curl_easy_init();
    if (c == NULL) {
        free(h);
        snprintf(err, errlen, "curl_easy_init failed");
        return NULL;
    }
    h->max_body = cfg->max_body ? cfg->max_body : (size_t)16 << 20;
    SET(CURLOPT_URL, cfg->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_NOSIGNAL, 1L);            /* no SIGALRM: safe in threaded hosts */
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    SET(CURLOPT_SSL_VERIFYPEER, cfg->verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, cfg->verify ? 2L : 0L);
    if (cfg->cafile) SET(CURLOPT_CAINFO, cfg->cafile);
    /* An explicit proxy option wins; "" disables the environment's proxy. */
    if (cfg->proxy) SET(CURLOPT_PROXY, cfg->proxy);
    h->has_proxy = cfg->proxy ? cfg->proxy[0] != '\0' : env_proxy();
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, "lua-ecdn/0.1.0");
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    return h;

fail:
    snprintf(err, errlen, "%s: %s", what, curl_easy_strerror(rc));
    ecdn_http_free(h);
    return NULL;
}

void ecdn_http_free(ecdn_http *h)
{
    if (h == NULL) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    OPENSSL_cleanse(h, sizeof *h);
    free(h);
}

void ecdn_http_result_init(ecdn_http_result *r)
{
    r->status = 0;
    ecdn_buf_init(&r->body);
    r->curl_code = 0;
    r->error[0] = '\0';
}

void ecdn_http_result_free(ecdn_http_result *r)
{
    ecdn_buf_free(&r->body);
    r->status = 0;
}

/* curl copies header strings with strdup; wipe the copies (they carry the
 * session token) before freeing them. */
static void free_headers(struct curl_slist *list)
{
    struct curl_slist *i;
    for (i = list; i; i = i->next)
        if (i->data) OPENSSL_cleanse(i->data, strlen(i->data));
    curl_slist_free_all(list);
}

static struct curl_slist *make_headers(const ecdn_header *headers, size_t n)
{
    struct curl_slist *list = NULL, *next;
    ecdn_buf line;
    size_t i;
    int bad = 0;

    ecdn_buf_init(&line);
    /* libcurl would otherwise add Expect: 100-continue to large bodies (an
     * extra round trip) and a Content-Type of its own. */
    next = curl_slist_append(list, "Expect:");
    if (next == NULL) return NULL;
    list = next;
    for (i = 0; i < n && !bad; i++) {
        ecdn_buf_reset(&line);
        if (ecdn_has_header_breaker(headers[i].value)) { bad = 1; break; }
        ecdn_buf_adds(&line, headers[i].name);
        ecdn_buf_adds(&line, ": ");
        ecdn_buf_addstr(&line, headers[i].value);
        if (line.failed) { bad = 1; break; }
        next = curl_slist_append(list, line.data);
        if (next == NULL) { bad = 1; break; }
        list = next;
    }
    ecdn_buf_free(&line);
    if (bad) {
        free_headers(list);
        return NULL;
    }
    return list;
}

int ecdn_http_post(ecdn_http *h, const ecdn_header *headers, size_t nheaders,
                   const char *body, size_t len, ecdn_http_result *r)
{
    CURL *c = h->curl;
    struct curl_slist *list;
    CURLcode rc = CURLE_OK;
    const char *what = "";
    sink s;
    long status = 0;

    ecdn_buf_reset(&r->body);
    r->status = 0;
    r->curl_code = 0;
    r->error[0] = '\0';
    h->errbuf[0] = '\0';

    list = make_headers(headers, nheaders);
    if (list == NULL) {
        r->curl_code = CURLE_OUT_OF_MEMORY;
        snprintf(r->error, sizeof r->error, "cannot build request headers");
        return -1;
    }
    s.body = &r->body;
    s.max = h->max_body;
    s.too_big = 0;
    SET(CURLOPT_HTTPHEADER, list);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, body ? body : "");
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    SET(CURLOPT_WRITEDATA, &s);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

fail:
    /* Leave no pointers into this call's memory on the reused handle. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)NULL);
    free_headers(list);
    (void)what;
    if (rc != CURLE_OK) {
        r->curl_code = (int)rc;
        if (rc == CURLE_WRITE_ERROR && s.too_big)
            snprintf(r->error, sizeof r->error, "response body larger than %lu bytes",
                     (unsigned long)h->max_body);
        else
            /* curl's detailed text can quote the proxy URL, user:password included. */
            snprintf(r->error, sizeof r->error, "%s",
                     h->errbuf[0] && !h->has_proxy ? h->errbuf : curl_easy_strerror(rc));
        ecdn_buf_reset(&r->body);
        return -1;
    }
    r->status = status;
    return 0;
}

static const struct {
    int code;
    const char *name;
} NAMES[] = {
    { CURLE_OK, "CURLE_OK" },
    { CURLE_UNSUPPORTED_PROTOCOL, "CURLE_UNSUPPORTED_PROTOCOL" },
    { CURLE_FAILED_INIT, "CURLE_FAILED_INIT" },
    { CURLE_URL_MALFORMAT, "CURLE_URL_MALFORMAT" },
    { CURLE_COULDNT_RESOLVE_PROXY, "CURLE_COULDNT_RESOLVE_PROXY" },
    { CURLE_COULDNT_RESOLVE_HOST, "CURLE_COULDNT_RESOLVE_HOST" },
    { CURLE_COULDNT_CONNECT, "CURLE_COULDNT_CONNECT" },
    { CURLE_WEIRD_SERVER_REPLY, "CURLE_WEIRD_SERVER_REPLY" },
    { CURLE_HTTP2, "CURLE_HTTP2" },
    { CURLE_PARTIAL_FILE, "CURLE_PARTIAL_FILE" },
    { CURLE_WRITE_ERROR, "CURLE_WRITE_ERROR" },
    { CURLE_READ_ERROR, "CURLE_READ_ERROR" },
    { CURLE_OUT_OF_MEMORY, "CURLE_OUT_OF_MEMORY" },
    { CURLE_OPERATION_TIMEDOUT, "CURLE_OPERATION_TIMEDOUT" },
    { CURLE_SSL_CONNECT_ERROR, "CURLE_SSL_CONNECT_ERROR" },
    { CURLE_TOO_MANY_REDIRECTS, "CURLE_TOO_MANY_REDIRECTS" },
    { CURLE_GOT_NOTHING, "CURLE_GOT_NOTHING" },
    { CURLE_SSL_ENGINE_NOTFOUND, "CURLE_SSL_ENGINE_NOTFOUND" },
    { CURLE_SEND_ERROR, "CURLE_SEND_ERROR" },
    { CURLE_RECV_ERROR, "CURLE_RECV_ERROR" },
    { CURLE_SSL_CERTPROBLEM, "CURLE_SSL_CERTPROBLEM" },
    { CURLE_SSL_CIPHER, "CURLE_SSL_CIPHER" },
    { CURLE_PEER_FAILED_VERIFICATION, "CURLE_PEER_FAILED_VERIFICATION" },
    { CURLE_BAD_CONTENT_ENCODING, "CURLE_BAD_CONTENT_ENCODING" },
    { CURLE_SSL_CACERT_BADFILE, "CURLE_SSL_CACERT_BADFILE" },
    { CURLE_SSL_SHUTDOWN_FAILED, "CURLE_SSL_SHUTDOWN_FAILED" },
    { CURLE_AGAIN, "CURLE_AGAIN" },
    { CURLE_SSL_CRL_BADFILE, "CURLE_SSL_CRL_BADFILE" },
    { CURLE_SSL_ISSUER_ERROR, "CURLE_SSL_ISSUER_ERROR" },
    { CURLE_SSL_PINNEDPUBKEYNOTMATCH, "CURLE_SSL_PINNEDPUBKEYNOTMATCH" },
    { CURLE_SSL_INVALIDCERTSTATUS, "CURLE_SSL_INVALIDCERTSTATUS" },
    { CURLE_HTTP2_STREAM, "CURLE_HTTP2_STREAM" },
    { CURLE_SSL_CLIENTCERT, "CURLE_SSL_CLIENTCERT" },
};

const char *ecdn_curl_code_name(int code, char tmp[32])
{
    size_t i;
    for (i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].code == code) return NAMES[i].name;
    snprintf(tmp, 32, "CURLE_%d", code);
    return tmp;
}
