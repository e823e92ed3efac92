#include "http.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#if LIBCURL_VERSION_NUM < 0x075000
#error "libcurl 7.80 or later is needed (CURLOPT_PREREQFUNCTION counts attempts)"
#endif

#define DEFAULT_MAX_BODY ((size_t)16 << 20)
#define DEFAULT_MAX_HEADERS ((size_t)64 << 10)

/* The header lines of a request in one buffer, linked the way curl reads
 * them: struct curl_slist is public, and curl only reads a CURLOPT_HTTPHEADER
 * list, never frees or changes it. Once the buffer has grown, building a
 * request's list allocates nothing (curl_slist_append would strdup every
 * line). The text carries the signature and the session token: it is wiped
 * as soon as the request is over. */
typedef struct header_list {
    ecdn_buf text;             /* "Name: value\0" lines */
    struct curl_slist *nodes;  /* cap entries */
    size_t *starts;            /* cap entries: where each line starts in text */
    size_t cap;
} header_list;

static void headers_wipe(header_list *hl);
static void headers_free(header_list *hl);
static struct curl_slist *headers_build(header_list *hl, const ecdn_header *headers, size_t n, int checked);

/* One request in flight: the body to hand out and what came back. */
typedef struct {
    const ecdn_http_request *q;
    ecdn_http_result *r;
    size_t max_body, max_headers;
    size_t header_bytes;
    int headers_done, body_too_big, headers_too_big, refused;
} transfer;

/* A request started with ecdn_http_start: its own easy handle and copies of
 * everything curl reads while it runs. */
typedef struct {
    CURL *easy;              /* NULL until first used */
    ecdn_http_request q;     /* points into url, body, hdrs below */
    ecdn_buf url, body;      /* wiped when the slot is freed */
    header_list hl;          /* its header lines (memory kept for reuse) */
    struct curl_slist *hdrs; /* hl's list while in flight, else NULL */
    ecdn_http_result res;
    transfer t;
    char errbuf[CURL_ERROR_SIZE];
    int busy;                /* 0 free, 1 in flight, 2 orphaned by a fork */
    int index;               /* its id */
} slot;

struct ecdn_http {
    CURL *curl;              /* the template, and the handle of ecdn_http_perform */
    CURLM *multi;            /* owns the connection cache */
    slot **slots;            /* ecdn_http_start's requests; each stays put (curl holds pointers into it) */
    size_t nslots;
    int active;              /* slots in flight */
    pid_t pid;               /* the process whose connections these are */
    int *socks;              /* sockets curl opened for us and has not closed */
    size_t nsocks, capsocks;
    size_t max_body, max_headers;
    int has_proxy;
    header_list hl;          /* ecdn_http_perform's header lines (memory kept for reuse) */
    char errbuf[CURL_ERROR_SIZE];
};


/* ---- process-wide state -------------------------------------------------- */

static volatile sig_atomic_t g_interrupted = 0;
static int g_wake[2] = { -1, -1 };   /* self-pipe: wakes curl_multi_poll on SIGINT */
static pid_t g_wake_pid = 0;          /* the process the pipe belongs to */

static void on_sigint(int sig)
{
    int saved = errno;
    (void)sig;
    g_interrupted = 1;
    if (g_wake[1] >= 0) {
        ssize_t w = write(g_wake[1], "x", 1);
        (void)w;
    }
    errno = saved;
}

static int cloexec_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int ecdn_http_catch_interrupts(void)
{
    struct sigaction sa;
    if (g_wake[0] < 0) {
        int p[2];
        if (pipe(p) != 0) return -1;
        if (cloexec_nonblock(p[0]) != 0 || cloexec_nonblock(p[1]) != 0) {
            close(p[0]);
            close(p[1]);
            return -1;
        }
        g_wake[0] = p[0];
        g_wake[1] = p[1];
        g_wake_pid = getpid();
    }
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    /* A closed pipe on stdout is then a write error the tool reports (with
     * its summary and exit status), not a silent death by SIGPIPE. */
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) return -1;
    sa.sa_handler = on_sigint;
    return sigaction(SIGINT, &sa, NULL);
}

int ecdn_http_interrupted(void)
{
    return g_interrupted != 0;
}

/* Reads what SIGINT wrote, so the pipe wakes no poll again. */
static void drain_wake(void)
{
    char buf[64];
    if (g_wake[0] < 0) return;
    while (read(g_wake[0], buf, sizeof buf) > 0) {}
}

/* A forked child gets a self-pipe of its own: a SIGINT to one process must
 * not wake the other's polls forever. */
static void own_wake_pipe(void)
{
    int p[2];
    if (g_wake[0] < 0 || g_wake_pid == getpid()) return;
    if (pipe(p) != 0 || cloexec_nonblock(p[0]) != 0 || cloexec_nonblock(p[1]) != 0) return;
    close(g_wake[0]);
    close(g_wake[1]);
    g_wake[0] = p[0];
    g_wake[1] = p[1];
    g_wake_pid = getpid();
}

int ecdn_http_global_init(void)
{
    static int done = 0;
    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) done = 1;
    return done ? 0 : -1;
}

/* ---- sockets: tracked so a forked child can detach them ------------------- */

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    ecdn_http *h = (ecdn_http *)ud;
    int fd;
    (void)purpose;
    if (h->nsocks == h->capsocks) {
        size_t cap = h->capsocks ? h->capsocks * 2 : 4;
        int *p = (int *)realloc(h->socks, cap * sizeof *p);
        if (p == NULL) return CURL_SOCKET_BAD;
        h->socks = p;
        h->capsocks = cap;
    }
    fd = socket(a->family, a->socktype, a->protocol);
    if (fd < 0) return CURL_SOCKET_BAD;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC); /* never leak into exec'd children */
    h->socks[h->nsocks++] = fd;
    return fd;
}

static int close_socket(void *ud, curl_socket_t fd)
{
    ecdn_http *h = (ecdn_http *)ud;
    size_t i;
    for (i = 0; i < h->nsocks; i++) {
        if (h->socks[i] == fd) {
            h->socks[i] = h->socks[--h->nsocks];
            break;
        }
    }
    return close(fd);
}

/* In a forked child: point every inherited socket at /dev/null, so that
 * whatever curl and OpenSSL write while closing them (a TLS close_notify)
 * never reaches the parent's peer. */
static int detach_sockets(ecdn_http *h)
{
    int null = open("/dev/null", O_RDWR);
    size_t i;
    int rc = 0;
    if (null < 0) return -1;
    for (i = 0; i < h->nsocks; i++)
        if (dup2(null, h->socks[i]) < 0) rc = -1;
    close(null);
    return rc;
}

/* ---- setup ---------------------------------------------------------------- */

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

static size_t on_body(char *p, size_t size, size_t n, void *ud);
static size_t on_header(char *p, size_t size, size_t n, void *ud);
static int on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port);

#define SET(opt, val) \
    do { what = #opt; if ((rc = curl_easy_setopt(c, opt, val)) != CURLE_OK) goto fail; } while (0)

ecdn_http *ecdn_http_new(const ecdn_http_config *cfg, char *err, size_t errlen)
{
    ecdn_http *h;
    CURL *c;
    CURLcode rc = CURLE_OK;
    const char *what = "";

    if (ecdn_http_global_init() != 0) {
        snprintf(err, errlen, "curl_global_init failed");
        return NULL;
    }
    h = (ecdn_http *)calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->pid = getpid();
    h->multi = curl_multi_init();
    c = h->curl = curl_easy_init();
    if (c == NULL || h->multi == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        ecdn_http_free(h);
        return NULL;
    }
    h->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    h->max_headers = cfg->max_headers ? cfg->max_headers : DEFAULT_MAX_HEADERS;
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
    SET(CURLOPT_USERAGENT, ECDN_USER_AGENT);
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, h);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, h);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    return h;

fail:
    snprintf(err, errlen, "%s: %s", what, curl_easy_strerror(rc));
    ecdn_http_free(h);
    return NULL;
}

static void slot_release(ecdn_http *h, slot *sl);

static void free_slots(ecdn_http *h)
{
    size_t i;
    for (i = 0; i < h->nslots; i++) {
        slot *sl = h->slots[i];
        if (sl->busy == 1) slot_release(h, sl);
        if (sl->easy) curl_easy_cleanup(sl->easy);
        headers_free(&sl->hl);
        ecdn_buf_free(&sl->url);
        ecdn_buf_free(&sl->body);
        ecdn_http_result_free(&sl->res);
        OPENSSL_cleanse(sl, sizeof *sl);
        free(sl);
    }
    free(h->slots);
    h->slots = NULL;
    h->nslots = 0;
    h->active = 0;
}

void ecdn_http_free(ecdn_http *h)
{
    if (h == NULL) return;
    if (h->pid != getpid() && detach_sockets(h) != 0) {
        /* Closing could still reach the parent's peer: leave it all be. */
        return;
    }
    free_slots(h);
    if (h->multi) curl_multi_cleanup(h->multi); /* closes cached connections */
    if (h->curl) curl_easy_cleanup(h->curl);
    headers_free(&h->hl);
    free(h->socks);
    OPENSSL_cleanse(h, sizeof *h);
    free(h);
}

static void orphan_slots(ecdn_http *h);
static void own_wake_pipe(void);
static void set_transfer(CURL *c, transfer *t, struct curl_slist *list, const ecdn_http_request *q);
static void clear_transfer(CURL *c);

/* After fork(): leave the parent's connections alone and start afresh with
 * the same options. */
static int renew(ecdn_http *h)
{
    CURL *fresh = curl_easy_duphandle(h->curl);
    CURLM *multi = curl_multi_init();
    if (fresh == NULL || multi == NULL) {
        if (fresh) curl_easy_cleanup(fresh);
        if (multi) curl_multi_cleanup(multi);
        return -1;
    }
    own_wake_pipe();
    if (detach_sockets(h) == 0) {
        orphan_slots(h); /* transfers the parent started are the parent's */
        curl_multi_cleanup(h->multi);
        curl_easy_cleanup(h->curl);
    } else {
        /* Cannot point them at /dev/null: never close them here (a TLS
         * close_notify would reach the parent's peer); the old handles
         * are left behind, and the in-flight requests reported. */
        size_t i;
        for (i = 0; i < h->nslots; i++) {
            slot *sl = h->slots[i];
            sl->easy = NULL;
            headers_wipe(&sl->hl); /* ours alone: wiping them touches no socket */
            sl->hdrs = NULL;
            if (sl->busy == 1) {
                sl->busy = 2;
                sl->res.failure = ECDN_NET_NOT_RESENT;
                sl->res.sent = 1;
                sl->res.retryable = 1;
                snprintf(sl->res.error, sizeof sl->res.error,
                         "the process forked while this request was in flight; its outcome is unknown");
            }
        }
        h->nsocks = 0;
    }
    h->curl = fresh;
    h->multi = multi;
    curl_easy_setopt(fresh, CURLOPT_ERRORBUFFER, h->errbuf);
    h->pid = getpid();
    return 0;
}

void ecdn_http_result_init(ecdn_http_result *r)
{
    memset(r, 0, sizeof *r);
    ecdn_buf_init(&r->headers);
    ecdn_buf_init(&r->body);
}

void ecdn_http_result_free(ecdn_http_result *r)
{
    ecdn_buf_free(&r->headers);
    ecdn_buf_free(&r->body);
    r->status = 0;
}

/* ---- callbacks ------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = (transfer *)ud;
    ecdn_buf *b = &t->r->body;
    size_t len = size * n;
    if (len > t->max_body || b->len > t->max_body - len) { /* curl: CURLE_WRITE_ERROR */
        t->body_too_big = 1;
        return 0;
    }
    if (ecdn_buf_add(b, p, len) != 0) return 0;
    return len;
}

/* Keeps the header lines of the last response (1xx answers come first). */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = (transfer *)ud;
    size_t len = size * n;
    t->header_bytes += len;
    if (t->header_bytes > t->max_headers) {
        t->headers_too_big = 1;
        return 0;
    }
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        ecdn_buf_reset(&t->r->headers);
        t->headers_done = 0;
        return len;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        t->headers_done = 1;
        return len;
    }
    if (!t->headers_done && ecdn_buf_add(&t->r->headers, p, len) != 0) return 0;
    return len;
}

/* Called each time the request is about to go out on a connection: after a
 * reused connection died, libcurl starts over on a new one. From this moment
 * the request may reach the service (it leaves in one write, headers and
 * body together): `sent` says so, and a request that may have gone out is
 * not written again unless the caller said so. (Conservative: a write that
 * failed at once also counts as sent.) */
static int on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port)
{
    transfer *t = (transfer *)ud;
    (void)ip, (void)local_ip, (void)port, (void)local_port;
    if (t->r->attempts > 0 && t->r->sent && !t->q->resend) {
        t->refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    t->r->attempts++;
    t->r->sent = 1;
    ecdn_buf_reset(&t->r->headers);
    ecdn_buf_reset(&t->r->body);
    t->header_bytes = 0;
    t->headers_done = 0;
    return CURL_PREREQFUNC_OK;
}

/* ---- headers ------------------------------------------------------------- */

static void headers_wipe(header_list *hl)
{
    if (hl->text.data) OPENSSL_cleanse(hl->text.data, hl->text.len);
    ecdn_buf_reset(&hl->text);
}

static void headers_free(header_list *hl)
{
    ecdn_buf_free(&hl->text); /* wipes */
    free(hl->nodes);
    free(hl->starts);
    hl->nodes = NULL;
    hl->starts = NULL;
    hl->cap = 0;
}

/* The list for these headers (and "Expect:"), or NULL when a value holds
 * CR, LF or NUL (unless already checked) or memory runs out. */
static struct curl_slist *headers_build(header_list *hl, const ecdn_header *headers, size_t n, int checked)
{
    size_t i;

    headers_wipe(hl);
    if (hl->cap < n + 1) {
        struct curl_slist *nodes = (struct curl_slist *)realloc(hl->nodes, (n + 1) * sizeof *nodes);
        size_t *starts;
        if (nodes == NULL) return NULL;
        hl->nodes = nodes;
        starts = (size_t *)realloc(hl->starts, (n + 1) * sizeof *starts);
        if (starts == NULL) return NULL;
        hl->starts = starts;
        hl->cap = n + 1;
    }
    /* libcurl would otherwise add Expect: 100-continue to large bodies (an
     * extra round trip). */
    hl->starts[0] = 0;
    ecdn_buf_add(&hl->text, "Expect:", sizeof "Expect:");
    for (i = 0; i < n; i++) {
        if (!checked && ecdn_has_header_breaker(headers[i].value)) {
            headers_wipe(hl);
            return NULL;
        }
        hl->starts[i + 1] = hl->text.len;
        ecdn_buf_adds(&hl->text, headers[i].name);
        ecdn_buf_add(&hl->text, ": ", 2);
        ecdn_buf_addstr(&hl->text, headers[i].value);
        ecdn_buf_add(&hl->text, "", 1); /* each line ends in its NUL */
    }
    if (hl->text.failed) {
        headers_wipe(hl);
        return NULL;
    }
    /* Linked only now: the buffer may have moved while it grew. */
    for (i = 0; i <= n; i++) {
        hl->nodes[i].data = hl->text.data + hl->starts[i];
        hl->nodes[i].next = i < n ? &hl->nodes[i + 1] : NULL;
    }
    return hl->nodes;
}

/* ---- classification -------------------------------------------------------- */

static int is_tls_code(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: case CURLE_SSL_ENGINE_INITFAILED: case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT: case CURLE_SSL_SHUTDOWN_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Failures a retry cannot mend: the configuration, the certificate chain or
 * this machine refuse the request, not the network of the moment. */
static int is_permanent_code(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_FAILED_INIT: case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN: case CURLE_OUT_OF_MEMORY: case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED: case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_CLIENTCERT:
        return 1;
    default:
        return 0;
    }
}

static int status_retryable(long status)
{
    return status == 408 || status == 429 || status >= 500;
}

static void classify(ecdn_http *h, const char *errbuf, transfer *t, CURLcode rc, int interrupted)
{
    ecdn_http_result *r = t->r;
    r->curl_code = (int)rc;
    if (interrupted) {
        r->failure = ECDN_NET_INTERRUPTED;
        r->curl_code = 0;
        r->retryable = 0; /* the user asked to stop */
        snprintf(r->error, sizeof r->error, "interrupted");
    } else if (rc == CURLE_ABORTED_BY_CALLBACK && t->refused) {
        r->failure = ECDN_NET_NOT_RESENT;
        r->retryable = 1;
        snprintf(r->error, sizeof r->error,
                 "the connection closed after the whole request was sent, before any answer");
    } else if (t->body_too_big) {
        r->failure = ECDN_NET_BODY_TOO_BIG;
        r->retryable = r->status != 200 && status_retryable(r->status);
        snprintf(r->error, sizeof r->error, "response body larger than %lu bytes",
                 (unsigned long)t->max_body);
    } else if (t->headers_too_big || (rc == CURLE_OUT_OF_MEMORY && t->header_bytes > 0 && !t->headers_done)) {
        /* libcurl itself refuses one header line over 100 KB as "out of memory" */
        r->failure = ECDN_NET_HEADERS_TOO_BIG;
        r->retryable = 0;
        snprintf(r->error, sizeof r->error, "response headers larger than %lu bytes",
                 (unsigned long)t->max_headers);
    } else if (t->header_bytes > 0 && !t->headers_done) {
        r->failure = ECDN_NET_PARTIAL_HEADERS;
        r->retryable = 1;
        snprintf(r->error, sizeof r->error, "the connection closed in the middle of the response headers");
    } else if (rc != CURLE_OK) {
        const char *text = errbuf[0] && !h->has_proxy ? errbuf : curl_easy_strerror(rc);
        r->failure = ECDN_NET_CURL;
        r->tls = is_tls_code(rc);
        r->retryable = !is_permanent_code(rc);
        /* curl's detailed text can quote the proxy URL, user:password included. */
        snprintf(r->error, sizeof r->error, "%s%.240s", r->tls ? "TLS: " : "", text);
    } else {
        r->failure = ECDN_NET_OK;
        r->curl_code = 0;
        r->retryable = 0;
    }
    if (r->failure != ECDN_NET_OK && r->failure != ECDN_NET_BODY_TOO_BIG) r->status = 0;
}

/* ---- perform ----------------------------------------------------------------- */

int ecdn_http_perform(ecdn_http *h, const ecdn_http_request *q, ecdn_http_result *r)
{
    CURL *c;
    struct curl_slist *list;
    struct curl_waitfd wake;
    CURLcode rc = CURLE_OK;
    CURLMcode mc;
    CURLMsg *msg;
    transfer t;
    int running = 0, left, interrupted = 0;
    long status = 0;

    ecdn_buf_reset(&r->headers);
    ecdn_buf_reset(&r->body);
    r->status = 0;
    r->attempts = r->sent = r->failure = r->curl_code = r->tls = r->retryable = 0;
    r->error[0] = '\0';
    memset(&t, 0, sizeof t);
    t.q = q;
    t.r = r;
    t.max_body = h->max_body;
    t.max_headers = h->max_headers;

    own_wake_pipe();
    if (g_interrupted) {
        classify(h, h->errbuf, &t, CURLE_OK, 1);
        return -1;
    }
    if (h->pid != getpid() && renew(h) != 0) {
        r->failure = ECDN_NET_BAD_REQUEST;
        snprintf(r->error, sizeof r->error, "out of memory");
        return -1;
    }
    if (h->active > 0) { /* their completions must not be read here */
        r->failure = ECDN_NET_BAD_REQUEST;
        snprintf(r->error, sizeof r->error, "requests started with start() are still in flight");
        return -1;
    }
    list = headers_build(&h->hl, q->headers, q->nheaders, q->headers_checked);
    if (list == NULL) {
        r->failure = ECDN_NET_BAD_REQUEST;
        snprintf(r->error, sizeof r->error, "cannot build request headers");
        return -1;
    }
    c = h->curl;
    h->errbuf[0] = '\0';
    set_transfer(c, &t, list, q);

    mc = curl_multi_add_handle(h->multi, c);
    wake.fd = g_wake[0];
    wake.events = CURL_WAIT_POLLIN;
    wake.revents = 0;
    while (mc == CURLM_OK) {
        mc = curl_multi_perform(h->multi, &running);
        if (mc != CURLM_OK || !running) break;
        if (g_interrupted) { interrupted = 1; break; }
        mc = curl_multi_poll(h->multi, &wake, g_wake[0] >= 0 ? 1 : 0, 1000, NULL);
        if (g_interrupted) { interrupted = 1; break; }
        if (wake.revents) drain_wake();
    }
    if (mc != CURLM_OK) rc = CURLE_FAILED_INIT;
    else if (!interrupted) {
        rc = CURLE_FAILED_INIT;
        while ((msg = curl_multi_info_read(h->multi, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == c) rc = msg->data.result;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    curl_multi_remove_handle(h->multi, c);

    clear_transfer(c);
    headers_wipe(&h->hl);

    classify(h, h->errbuf, &t, rc, interrupted);
    if (r->failure != ECDN_NET_OK) {
        if (r->failure != ECDN_NET_BODY_TOO_BIG) ecdn_buf_reset(&r->headers);
        ecdn_buf_reset(&r->body);
        return -1;
    }
    return 0;
}


/* ---- concurrent requests ---------------------------------------------------- */

static void set_transfer(CURL *c, transfer *t, struct curl_slist *list, const ecdn_http_request *q)
{
    curl_easy_setopt(c, CURLOPT_URL, q->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    if (strcmp(q->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        /* Headers and body leave in one write (a read callback costs a
         * second write and a second wake-up of the server). */
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, t);
}

/* Leave no pointers into a finished request's memory on a reused handle. */
static void clear_transfer(CURL *c)
{
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)NULL);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, (void *)NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, (void *)NULL);
}

static void slot_release(ecdn_http *h, slot *sl)
{
    if (sl->easy) {
        curl_multi_remove_handle(h->multi, sl->easy);
        clear_transfer(sl->easy);
    }
    headers_wipe(&sl->hl);
    sl->hdrs = NULL;
    ecdn_buf_reset(&sl->url);
    if (sl->body.data) OPENSSL_cleanse(sl->body.data, sl->body.len);
    ecdn_buf_reset(&sl->body);
    sl->busy = 0;
    h->active--;
}

/* In a forked child: the parent's transfers end here, as failures that may
 * have been applied (ecdn_http_wait reports them). */
static void orphan_slots(ecdn_http *h)
{
    size_t i;
    for (i = 0; i < h->nslots; i++) {
        slot *sl = h->slots[i];
        if (sl->easy) {
            if (sl->busy) curl_multi_remove_handle(h->multi, sl->easy);
            curl_easy_cleanup(sl->easy);
            sl->easy = NULL;
        }
        headers_wipe(&sl->hl); /* they carry the signature and the token */
        sl->hdrs = NULL;
        if (sl->body.data) OPENSSL_cleanse(sl->body.data, sl->body.len);
        ecdn_buf_reset(&sl->body);
        if (sl->busy == 1) {
            sl->busy = 2; /* orphaned: reported by the next wait */
            sl->res.failure = ECDN_NET_NOT_RESENT;
            sl->res.sent = 1;
            sl->res.retryable = 1;
            snprintf(sl->res.error, sizeof sl->res.error,
                     "the process forked while this request was in flight; its outcome is unknown");
        }
    }
}

static slot *free_slot(ecdn_http *h, int *id)
{
    size_t i;
    slot **grown, *sl;
    for (i = 0; i < h->nslots; i++) {
        if (!h->slots[i]->busy) {
            *id = (int)i;
            return h->slots[i];
        }
    }
    if (h->nslots >= ECDN_HTTP_MAX_ACTIVE) return NULL;
    grown = (slot **)realloc(h->slots, (h->nslots + 1) * sizeof *grown);
    if (grown == NULL) return NULL;
    h->slots = grown;
    sl = (slot *)calloc(1, sizeof *sl);
    if (sl == NULL) return NULL;
    ecdn_buf_init(&sl->url);
    ecdn_buf_init(&sl->body);
    ecdn_http_result_init(&sl->res);
    sl->index = (int)h->nslots;
    h->slots[h->nslots] = sl;
    *id = (int)h->nslots++;
    return sl;
}

int ecdn_http_start(ecdn_http *h, const ecdn_http_request *q, char *err, size_t errlen)
{
    slot *sl;
    int id = -1;

    if (g_interrupted) {
        snprintf(err, errlen, "interrupted: not sent");
        return -1;
    }
    if (h->pid != getpid() && renew(h) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sl = free_slot(h, &id);
    if (sl == NULL) {
        snprintf(err, errlen, "more than %d requests in flight, or out of memory", ECDN_HTTP_MAX_ACTIVE);
        return -1;
    }
    if (sl->easy == NULL) {
        sl->easy = curl_easy_duphandle(h->curl); /* the template's options, a handle of its own */
        if (sl->easy == NULL) {
            snprintf(err, errlen, "curl_easy_duphandle failed");
            return -1;
        }
        curl_easy_setopt(sl->easy, CURLOPT_ERRORBUFFER, sl->errbuf);
        curl_easy_setopt(sl->easy, CURLOPT_PRIVATE, (void *)sl);
    }
    ecdn_buf_reset(&sl->url);
    ecdn_buf_reset(&sl->body);
    ecdn_buf_adds(&sl->url, q->url);
    ecdn_buf_add(&sl->body, q->body ? q->body : "", q->len);
    sl->hdrs = headers_build(&sl->hl, q->headers, q->nheaders, q->headers_checked);
    if (sl->url.failed || sl->body.failed || sl->hdrs == NULL) {
        headers_wipe(&sl->hl);
        sl->hdrs = NULL;
        if (sl->body.data) OPENSSL_cleanse(sl->body.data, sl->body.len);
        ecdn_buf_reset(&sl->body);
        snprintf(err, errlen, "cannot build the request (memory, or CR/LF/NUL in a header)");
        return -1;
    }
    sl->q = *q;
    sl->q.url = sl->url.data;
    sl->q.body = sl->body.data ? sl->body.data : "";
    sl->q.headers = NULL;   /* copied into hdrs */
    sl->q.nheaders = 0;
    ecdn_buf_reset(&sl->res.headers);
    ecdn_buf_reset(&sl->res.body);
    sl->res.status = 0;
    sl->res.attempts = sl->res.sent = sl->res.failure = sl->res.curl_code = sl->res.tls = sl->res.retryable = 0;
    sl->res.error[0] = '\0';
    memset(&sl->t, 0, sizeof sl->t);
    sl->t.q = &sl->q;
    sl->t.r = &sl->res;
    sl->t.max_body = h->max_body;
    sl->t.max_headers = h->max_headers;
    sl->errbuf[0] = '\0';
    set_transfer(sl->easy, &sl->t, sl->hdrs, &sl->q);
    if (curl_multi_add_handle(h->multi, sl->easy) != CURLM_OK) {
        clear_transfer(sl->easy);
        headers_wipe(&sl->hl);
        sl->hdrs = NULL;
        if (sl->body.data) OPENSSL_cleanse(sl->body.data, sl->body.len);
        ecdn_buf_reset(&sl->body);
        snprintf(err, errlen, "curl_multi_add_handle failed");
        return -1;
    }
    sl->busy = 1;
    h->active++;
    return id;
}

int ecdn_http_active(const ecdn_http *h)
{
    return h->active;
}

/* Reports one finished slot and frees it for the next request. */
static void report(ecdn_http *h, slot *sl, int id, ecdn_http_done done, void *ud)
{
    int rc = sl->res.failure == ECDN_NET_OK ? 0 : -1;
    if (rc != 0) {
        if (sl->res.failure != ECDN_NET_BODY_TOO_BIG) ecdn_buf_reset(&sl->res.headers);
        ecdn_buf_reset(&sl->res.body);
    }
    if (sl->busy == 2) { /* orphaned by a fork: nothing of it is in curl any more */
        sl->busy = 0;
        h->active--;
    } else {
        slot_release(h, sl);
    }
    done(ud, id, rc, &sl->res);
    ecdn_buf_reset(&sl->res.body);
    ecdn_buf_reset(&sl->res.headers);
}

int ecdn_http_wait(ecdn_http *h, long timeout_ms, ecdn_http_done done, void *ud)
{
    struct curl_waitfd wake;
    struct timespec t0, t1;
    CURLMsg *msg;
    int running = 0, left, finished = 0;
    size_t i;
    long waited;

    own_wake_pipe();
    if (h->pid != getpid() && renew(h) != 0) return -1;
    for (i = 0; i < h->nslots; i++) /* orphans first: they finished in the fork */
        if (h->slots[i]->busy == 2) {
            report(h, h->slots[i], (int)i, done, ud);
            finished++;
        }
    if (finished) return finished;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wake.fd = g_wake[0];
    wake.events = CURL_WAIT_POLLIN;
    wake.revents = 0;
    for (;;) {
        if (g_interrupted) break; /* before curl writes anything more */
        if (curl_multi_perform(h->multi, &running) != CURLM_OK) return -1;
        while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
            slot *sl = NULL;
            long status = 0;
            if (msg->msg != CURLMSG_DONE) continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
            if (sl == NULL || sl->busy != 1) continue; /* ecdn_http_perform's own handle */
            curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
            sl->res.status = status;
            classify(h, sl->errbuf, &sl->t, msg->data.result, 0);
            report(h, sl, sl->index, done, ud);
            finished++;
        }
        if (finished || h->active == 0) return finished;
        if (g_interrupted) break;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        waited = (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (waited >= timeout_ms) return 0;
        if (curl_multi_poll(h->multi, &wake, g_wake[0] >= 0 ? 1 : 0,
                            (int)(timeout_ms - waited < 1000 ? timeout_ms - waited : 1000), NULL) != CURLM_OK)
            return -1;
        if (wake.revents) drain_wake();
    }
    /* Interrupted: every request in flight ends now, as interrupted. */
    for (i = 0; i < h->nslots; i++) {
        slot *sl = h->slots[i];
        if (sl->busy != 1) continue;
        classify(h, sl->errbuf, &sl->t, CURLE_OK, 1);
        report(h, sl, (int)i, done, ud);
        finished++;
    }
    return finished;
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

const char *ecdn_http_failure_name(const ecdn_http_result *r, char tmp[32])
{
    size_t i;
    switch (r->failure) {
    case ECDN_NET_BODY_TOO_BIG: return "body_too_large";
    case ECDN_NET_HEADERS_TOO_BIG: return "headers_too_large";
    case ECDN_NET_PARTIAL_HEADERS: return "partial_headers";
    case ECDN_NET_NOT_RESENT: return "closed_after_send";
    case ECDN_NET_INTERRUPTED: return "interrupted";
    case ECDN_NET_BAD_REQUEST: return "bad_request";
    default: break;
    }
    for (i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].code == r->curl_code) return NAMES[i].name;
    snprintf(tmp, 32, "CURLE_%d", r->curl_code);
    return tmp;
}
