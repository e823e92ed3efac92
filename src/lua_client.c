/* The ecdn.client userdata: the pipeline in C for the common path. Its
 * private methods build the request (lua_request.c), sign it (sign.c) and
 * send it (http.c), then hand the Lua layer (lua/ecdn/client.lua) a raw
 * response table or an error table, which lua/ecdn/decode.lua turns into
 * results. Lua errors are raised only before curl runs, never inside. */
#include "lua_client.h"
#include "lua_answer.h"
#include "lua_http.h"
#include "lua_request.h"
#include "lua_util.h"
#include "http.h"
#include "sign.h"
#include "version.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLIENT_MT "ecdn.client"
#define SCRATCH_MT "ecdn.client_scratch"
#define V1_MT "ecdn.client_v1_scratch"
#define FN_NEW "ecdn.client"
#define MAX_OPTION_LEN 65536
#define MAX_URL 8192

typedef struct {
    ecdn_buf secret_id, secret_key, token;  /* token.data NULL = none */
} credentials;

/* Per-request C memory: the client's spare (kept between requests, so a
 * request allocates nothing once it has grown), or a userdata of its own,
 * freed by the collector even when a Lua error (out of memory while pushing
 * the answer) cuts the call short. Wiped after every request. */
typedef struct {
    ecdn_tc3_result sig;
    ecdn_http_result res;
    ecdn_buf body;
} scratch;

typedef struct {
    ecdn_http *http;
    credentials cred;        /* the only copy; wiped when replaced or freed */
    /* Absent optional fields have data == NULL. All are wiped when freed. */
    ecdn_buf service, host, version, region, language, url;
    ecdn_tc3_prepared *tc3;  /* borrows cred and target; made on first use, freed before either changes */
    scratch *spare;          /* NULL until the first request */
    int spare_busy;          /* a request is using it (or a raise cut one short) */
    int waiting;             /* _wait is running: a close() meanwhile is put off */
    int close_pending;       /* a close() waits for _wait to return */
    int closed;
} client;

static void scratch_init(scratch *s)
{
    ecdn_tc3_result_init(&s->sig);
    ecdn_http_result_init(&s->res);
    ecdn_buf_init(&s->body);
}

static void scratch_free(scratch *s)
{
    ecdn_tc3_result_free(&s->sig);
    ecdn_http_result_free(&s->res);
    ecdn_buf_free(&s->body);
}

/* Wipes what a request left; the memory stays for the next one. */
static void scratch_clear(scratch *s)
{
    ecdn_tc3_result_clear(&s->sig);
    ecdn_buf_reset(&s->res.headers);
    ecdn_buf_reset(&s->res.body);
    s->res.status = 0;
    ecdn_buf_reset(&s->body);
}

/* (The day keys derived from them live in the client's prepared signer,
 * never in the thread's cache: drop_signer wipes them.) */
static void credentials_free(credentials *c)
{
    ecdn_buf_free(&c->secret_id);
    ecdn_buf_free(&c->secret_key);
    ecdn_buf_free(&c->token);
}

/* Drops (and wipes) the prepared signer: the credentials or the target changed. */
static void drop_signer(client *c)
{
    ecdn_tc3_prepared_free(c->tc3);
    c->tc3 = NULL;
}

/* final: the collector's call (no request can be running then). Otherwise
 * (close(), perhaps from a finalizer the collector runs in the middle of a
 * call on this client): a request being answered keeps the spare until the
 * collector frees it, and while _wait runs (it reports through Lua, and goes
 * on using the transport) the client is only marked closed; _wait frees it
 * when it returns. Calls that allocate from Lua re-check `closed` before
 * they touch the credentials or the transport. */
static void client_free(client *c, int final)
{
    if (!final && c->waiting) {
        c->closed = 1;
        c->close_pending = 1;
        return;
    }
    c->close_pending = 0;
    if (c->spare && (final || !c->spare_busy)) {
        scratch_free(c->spare);
        free(c->spare);
        c->spare = NULL;
    }
    ecdn_http_free(c->http);
    c->http = NULL;
    drop_signer(c);
    credentials_free(&c->cred);
    ecdn_buf_free(&c->service);
    ecdn_buf_free(&c->host);
    ecdn_buf_free(&c->version);
    ecdn_buf_free(&c->region);
    ecdn_buf_free(&c->language);
    ecdn_buf_free(&c->url);
    c->closed = 1;
}

static int scratch_gc(lua_State *L)
{
    scratch_free((scratch *)luaL_checkudata(L, 1, SCRATCH_MT));
    return 0;
}

/* Pushes a scratch userdata of its own. */
static scratch *new_scratch(lua_State *L)
{
    scratch *s = (scratch *)lua_newuserdata(L, sizeof *s);
    scratch_init(s);
    luaL_getmetatable(L, SCRATCH_MT);
    lua_setmetatable(L, -2);
    return s;
}

/* The client's spare when it is free, else a new userdata (pushed): a
 * finalizer can run a request on the same client while another is being
 * answered. Give it back with release_scratch. */
static scratch *take_scratch(lua_State *L, client *c)
{
    if (c->spare == NULL && (c->spare = (scratch *)malloc(sizeof *c->spare)) != NULL) scratch_init(c->spare);
    if (c->spare != NULL && !c->spare_busy) {
        c->spare_busy = 1;
        return c->spare;
    }
    return new_scratch(L);
}

#define SPARE_KEEP ((size_t)1 << 20) /* larger buffers (a rare huge answer) are not kept */

static void release_scratch(client *c, scratch *s)
{
    scratch_clear(s);
    if (s->res.body.cap > SPARE_KEEP) ecdn_buf_free(&s->res.body);
    if (s->res.headers.cap > SPARE_KEEP) ecdn_buf_free(&s->res.headers);
    if (s->body.cap > SPARE_KEEP) ecdn_buf_free(&s->body);
    if (s == c->spare) c->spare_busy = 0;
}

/* Raises if the client was closed since the call began (a finalizer run by
 * an allocation): nothing has been sent then. s (or NULL) is given back. */
static void still_open(lua_State *L, client *c, scratch *s, const char *fn)
{
    if (!c->closed) return;
    if (s) release_scratch(c, s);
    luaL_error(L, "ecdn.client:%s: the client was closed during the call", fn);
}

static client *check_client(lua_State *L, int idx)
{
    return (client *)luaL_checkudata(L, idx, CLIENT_MT);
}

static client *check_open(lua_State *L, int idx, const char *fn)
{
    client *c = check_client(L, idx);
    if (c->closed) luaL_error(L, "ecdn.client:%s: the client is closed", fn);
    return c;
}

/* Copies a string option into dst; header values must be non-empty, at most
 * 64 KiB and free of CR/LF/NUL. */
static void copy_opt(lua_State *L, int t, const char *fn, const char *field, int required, ecdn_buf *dst)
{
    ecdn_str s;
    ecdn_opt_string(L, t, fn, field, required, &s);
    if (s.ptr == NULL) {
        lua_pop(L, 1);
        return;
    }
    if (s.len == 0) ecdn_field_error(L, fn, field, "is empty");
    /* curl refuses header lines near 1 MB with a misleading "out of memory". */
    if (s.len > MAX_OPTION_LEN) ecdn_field_error(L, fn, field, "is longer than 65536 bytes");
    if (ecdn_has_header_breaker(s)) ecdn_field_error(L, fn, field, "contains CR, LF or NUL");
    if (ecdn_buf_addstr(dst, s) != 0) luaL_error(L, "%s: out of memory", fn);
    lua_pop(L, 1); /* only now: s.ptr borrows from this value */
}

static void read_credentials(lua_State *L, int t, const char *fn, credentials *cr)
{
    copy_opt(L, t, fn, "secret_id", 1, &cr->secret_id);
    copy_opt(L, t, fn, "secret_key", 1, &cr->secret_key);
    copy_opt(L, t, fn, "token", 0, &cr->token);
}

/* core.new{secret_id, secret_key, service, host, url, version, [token,
 * region, language, timeout, connect_timeout, verify, cafile, proxy]}.
 * The Lua layer fills defaults, parses the endpoint and checks credentials;
 * what is still wrong raises here. */
static int l_new(lua_State *L)
{
    client *c;
    ecdn_http_config cfg;
    char err[256];

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_checkstack(L, 8, FN_NEW);
    /* The userdata exists first, so memory copied into it is freed by __gc
     * whatever option raises later. */
    c = (client *)lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->closed = 1;
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);

    read_credentials(L, 1, FN_NEW, &c->cred);
    copy_opt(L, 1, FN_NEW, "service", 1, &c->service);
    copy_opt(L, 1, FN_NEW, "host", 1, &c->host);
    copy_opt(L, 1, FN_NEW, "version", 1, &c->version);
    copy_opt(L, 1, FN_NEW, "region", 0, &c->region);
    copy_opt(L, 1, FN_NEW, "language", 0, &c->language);
    copy_opt(L, 1, FN_NEW, "url", 1, &c->url);
    if (c->url.len > MAX_URL) ecdn_field_error(L, FN_NEW, "endpoint", "is too long");
    if (strncmp(c->url.data, "http://", 7) != 0 && strncmp(c->url.data, "https://", 8) != 0)
        ecdn_field_error(L, FN_NEW, "endpoint", "must start with http:// or https://");

    ecdn_http_config_from_lua(L, 1, FN_NEW, &cfg);
    c->http = ecdn_http_new(&cfg, err, sizeof err);
    if (c->http == NULL) return luaL_error(L, "%s: cannot set up libcurl: %s", FN_NEW, err);
    c->closed = 0;
    lua_settop(L, 2);
    return 1;
}

#define CRED_MT "ecdn.credentials_scratch"

static int cred_gc(lua_State *L)
{
    credentials_free((credentials *)luaL_checkudata(L, 1, CRED_MT));
    return 0;
}

/* client:_set_credentials{secret_id, secret_key, token}: replaces the
 * credentials on the live client (the connection stays); the old ones are
 * wiped. Nothing changes if the new ones are refused. */
static int l_set_credentials(lua_State *L)
{
    client *c = check_open(L, 1, "set_credentials");
    credentials *fresh;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    /* Owned by a userdata while being read, so a raise frees and wipes it. */
    fresh = (credentials *)lua_newuserdata(L, sizeof *fresh);
    memset(fresh, 0, sizeof *fresh);
    luaL_getmetatable(L, CRED_MT);
    lua_setmetatable(L, -2);
    read_credentials(L, 2, "ecdn.client:set_credentials", fresh);
    still_open(L, c, NULL, "set_credentials"); /* (a finalizer may have closed it meanwhile) */
    drop_signer(c);
    credentials_free(&c->cred);
    c->cred = *fresh;            /* the buffers move; the husk must not free them */
    memset(fresh, 0, sizeof *fresh);
    lua_pushboolean(L, 1);
    return 1;
}

static ecdn_str str_of(const ecdn_buf *b)
{
    ecdn_str s;
    s.ptr = b->data;
    s.len = b->data ? b->len : 0;
    return s;
}

static long long opt_timestamp(lua_State *L, int idx, const char *fn)
{
    long long ts = 0;
    if (lua_isnoneornil(L, idx)) return (long long)time(NULL);
    if (lua_type(L, idx) != LUA_TNUMBER || !ecdn_to_integer(L, idx, &ts) || ts < 0 || ts > ECDN_MAX_TIMESTAMP)
        luaL_error(L, "ecdn.client:%s: timestamp must be a non-negative integer (unix seconds)", fn);
    return ts;
}

/* Signs body for action into s->sig and fills hq (headers in hs, which
 * must have ECDN_TC3_MAX_HEADERS + 1 entries). Raises for what cannot be
 * signed; nothing has been sent then. */
static void sign_request(lua_State *L, client *c, scratch *s, ecdn_str action, ecdn_str body,
                         long long ts, int resend, const char *fn, ecdn_header *hs, ecdn_http_request *hq)
{
    static const char REQUEST_CLIENT[] = ECDN_USER_AGENT;
    ecdn_tc3_request q;
    const char *bad = NULL;
    size_t n;
    int rc;

    still_open(L, c, s, fn);
    rc = ECDN_OK;
    if (c->tc3 == NULL) {
        memset(&q, 0, sizeof q);
        q.secret_id = str_of(&c->cred.secret_id);
        q.secret_key = str_of(&c->cred.secret_key);
        q.token = str_of(&c->cred.token);
        q.service = str_of(&c->service);
        q.host = str_of(&c->host);
        q.version = str_of(&c->version);
        q.region = str_of(&c->region);
        q.language = str_of(&c->language);
        c->tc3 = ecdn_tc3_prepare_borrowed(&q, &rc, &bad); /* the client's buffers: one copy of the key */
    }
    /* (nobody reads the canonical request here: omit_debug) */
    if (rc == ECDN_OK) rc = ecdn_tc3_prepared_sign(c->tc3, action, body, ts, 1, &s->sig, &bad);
    if (rc != ECDN_OK) release_scratch(c, s);
    if (rc == ECDN_EFIELD || rc == ECDN_ERANGE)
        luaL_error(L, "ecdn.client:%s: cannot sign: field '%s' is invalid", fn, bad ? bad : "?");
    if (rc != ECDN_OK)
        luaL_error(L, "ecdn.client:%s: cannot sign (%s)", fn, rc == ECDN_ENOMEM ? "out of memory" : "OpenSSL");

    n = s->sig.nheaders;
    memcpy(hs, s->sig.headers, n * sizeof hs[0]);
    hs[n].name = "X-TC-RequestClient";
    hs[n].value.ptr = REQUEST_CLIENT;
    hs[n].value.len = sizeof REQUEST_CLIENT - 1;
    n++;

    memset(hq, 0, sizeof *hq);
    hq->method = "POST";
    hq->url = c->url.data;
    hq->headers = hs;
    hq->nheaders = n;
    hq->body = body.ptr;
    hq->len = body.len;
    hq->resend = resend;
    hq->headers_checked = 1; /* made by the signer from fields it checked, and a constant */
}

/* Signs body for action and sends it; pushes the raw outcome (raw | nil,
 * failure), or for a task action whose answer is the common one, nil, nil,
 * and the decoded result (the fast path of stage 4). Everything that can
 * raise happens before curl. */
static int sign_and_send(lua_State *L, client *c, scratch *s, ecdn_str action, ecdn_str body,
                         long long ts, int resend, int task, const char *fn)
{
    ecdn_header hs[ECDN_TC3_MAX_HEADERS + 1];
    ecdn_http_request hq;
    int rc, n;
    sign_request(L, c, s, action, body, ts, resend, fn, hs, &hq);
    /* No Lua calls from here until curl has returned. */
    rc = ecdn_http_perform(c->http, &hq, &s->res);
    ecdn_tc3_result_clear(&s->sig);
    if (rc == 0 && task) {
        lua_pushnil(L);
        lua_pushnil(L);
        if (ecdn_push_task_answer(L, &s->res)) n = 3;
        else {
            lua_pop(L, 2);
            n = ecdn_push_http_outcome(L, rc, &s->res);
        }
    } else {
        n = ecdn_push_http_outcome(L, rc, &s->res);
    }
    release_scratch(c, s);
    return n;
}

/* client:_start(action, body [, timestamp [, resend]]) -> id | nil, failure
 * Signs now and starts the request without waiting (see _wait). */
static int l_start(lua_State *L)
{
    static const char *fn = "start";
    client *c = check_open(L, 1, fn);
    ecdn_header hs[ECDN_TC3_MAX_HEADERS + 1];
    ecdn_http_request hq;
    ecdn_str action, body;
    char err[160];
    long long ts;
    scratch *s;
    int id;

    action.ptr = luaL_checklstring(L, 2, &action.len);
    body.ptr = luaL_checklstring(L, 3, &body.len);
    ts = opt_timestamp(L, 4, fn);
    lua_settop(L, 5);
    s = take_scratch(L, c);
    sign_request(L, c, s, action, body, ts, lua_toboolean(L, 5), fn, hs, &hq);
    id = ecdn_http_start(c->http, &hq, err, sizeof err); /* copies what it needs */
    release_scratch(c, s);
    if (id >= 0) {
        lua_pushinteger(L, (lua_Integer)id);
        return 1;
    }
    lua_pushnil(L);
    lua_createtable(L, 0, 6);
    lua_pushliteral(L, "network");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "bad_request");
    lua_setfield(L, -2, "detail");
    lua_pushstring(L, err);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "sent");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "retryable");
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "attempts");
    return 2;
}

/* Appends {id = id, raw = ...} or {id = id, failure = ...} to the table on top. */
static void on_done(void *ud, int id, int rc, ecdn_http_result *r)
{
    lua_State *L = (lua_State *)ud;
    luaL_checkstack(L, 8, "wait");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)id);
    lua_setfield(L, -2, "id");
    if (ecdn_push_http_outcome(L, rc, r) == 1) {
        lua_setfield(L, -2, "raw");
    } else {
        lua_setfield(L, -3, "failure");
        lua_pop(L, 1); /* the nil */
    }
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* client:_wait(seconds) -> array of {id, raw | failure} (empty on timeout) */
static int l_wait(lua_State *L)
{
    client *c = check_open(L, 1, "wait");
    lua_Number secs = luaL_checknumber(L, 2);
    long ms = !(secs > 0) ? 0 : secs > 86400 ? 86400000L : (long)(secs * 1000.0 + 0.5); /* NaN: 0 */
    int rc;
    if (c->waiting) return luaL_error(L, "ecdn.client:wait: already waiting (called from a finalizer?)");
    /* Set before the first allocation (a raise after it leaves it set: a
     * close() then waits for __gc). */
    c->waiting = 1;
    lua_settop(L, 2);
    lua_newtable(L);
    rc = ecdn_http_wait(c->http, ms, on_done, L);
    c->waiting = 0;
    if (c->close_pending) client_free(c, 0);
    if (rc < 0) return luaL_error(L, "ecdn.client:wait: libcurl failed");
    return 1;
}

/* client:_active() -> requests started and not yet reported by _wait */
static int l_active(lua_State *L)
{
    client *c = check_client(L, 1);
    lua_pushinteger(L, c->http ? ecdn_http_active(c->http) : 0);
    return 1;
}

/* client:_send(action, body [, timestamp [, resend]]) -> raw | nil, network error */
static int l_send(lua_State *L)
{
    static const char *fn = "call";
    client *c = check_open(L, 1, fn);
    ecdn_str action, body;
    long long ts;
    int resend;
    scratch *s;

    action.ptr = luaL_checklstring(L, 2, &action.len);
    body.ptr = luaL_checklstring(L, 3, &body.len);
    ts = opt_timestamp(L, 4, fn);
    resend = lua_toboolean(L, 5);
    lua_settop(L, 3);
    luaL_checkstack(L, 6, fn);
    s = take_scratch(L, c);
    return sign_and_send(L, c, s, action, body, ts, resend, 0, fn);
}

/* Stack: client, items, [tail]; tail borrows from the stack. */
static int purge_list(lua_State *L, const char *fn, const char *action_name, const char *field,
                      const char *tail, long long ts)
{
    client *c = check_client(L, 1);
    ecdn_str action, body;
    scratch *s = take_scratch(L, c);
    int n = ecdn_lua_list_body(L, 2, field, tail, &s->body, fn);
    if (n) {
        release_scratch(c, s);
        return n;
    }
    action.ptr = action_name;
    action.len = strlen(action_name);
    body.ptr = s->body.data;
    body.len = s->body.len;
    return sign_and_send(L, c, s, action, body, ts, 0, 1, fn);
}

/* client:_purge(urls [, timestamp [, tail]]) -> raw | nil, error table (network or local)
 *   | nil, nil, result (the common answer, decoded: see sign_and_send)
 * tail: raw JSON members the Lua layer made from checked values (,"Area":"mainland"). */
static int l_purge(lua_State *L)
{
    static const char *fn = "purge";
    const char *tail;
    long long ts;
    check_open(L, 1, fn);
    luaL_checktype(L, 2, LUA_TTABLE);
    ts = opt_timestamp(L, 3, fn);
    tail = luaL_optstring(L, 4, NULL);
    lua_settop(L, 4); /* the tail stays referenced */
    return purge_list(L, fn, "PurgeUrlsCache", "Urls", tail, ts);
}

/* client:_purge_paths(paths, flush_type [, timestamp [, tail]]) -> as _purge */
static int l_purge_paths(lua_State *L)
{
    static const char *fn = "purge_paths";
    const char *flush;
    long long ts;
    check_open(L, 1, fn);
    luaL_checktype(L, 2, LUA_TTABLE);
    flush = ecdn_flush_tail(luaL_checkstring(L, 3));
    if (flush == NULL) return luaL_error(L, "ecdn.client:%s: flush_type must be \"flush\" or \"delete\"", fn);
    ts = opt_timestamp(L, 4, fn);
    luaL_optstring(L, 5, "");
    lua_settop(L, 5);
    lua_pushstring(L, flush);
    if (lua_isnil(L, 5)) lua_pushliteral(L, "");
    else lua_pushvalue(L, 5);
    lua_concat(L, 2);   /* flush tail .. extra, made while both are on the stack */
    lua_replace(L, 3);
    lua_settop(L, 3);   /* stack: client, paths, tail */
    return purge_list(L, fn, "PurgePathCache", "Paths", lua_tostring(L, 3), ts);
}

#define TARGET_MT "ecdn.target_scratch"

typedef struct {
    ecdn_buf b[4]; /* service, host, version, url */
} target;

static int target_gc(lua_State *L)
{
    target *t = (target *)luaL_checkudata(L, 1, TARGET_MT);
    int i;
    for (i = 0; i < 4; i++) ecdn_buf_free(&t->b[i]);
    return 0;
}

/* client:_set_target{service, host, version, url}: another service on the
 * live client (ECDN accounts moved to CDN). Nothing changes if one is bad. */
static int l_set_target(lua_State *L)
{
    static const char *fn = "ecdn.client:set_target";
    static const char *const FIELDS[4] = { "service", "host", "version", "url" };
    client *c = check_open(L, 1, "set_target");
    target *t;
    int i;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    /* Owned by a userdata while being read, so a raise frees it. */
    t = (target *)lua_newuserdata(L, sizeof *t);
    for (i = 0; i < 4; i++) ecdn_buf_init(&t->b[i]);
    luaL_getmetatable(L, TARGET_MT);
    lua_setmetatable(L, -2);
    for (i = 0; i < 4; i++) copy_opt(L, 2, fn, FIELDS[i], 1, &t->b[i]);
    still_open(L, c, NULL, "set_target");
    if (t->b[3].len > MAX_URL ||
        (strncmp(t->b[3].data, "http://", 7) != 0 && strncmp(t->b[3].data, "https://", 8) != 0))
        return luaL_error(L, "%s: url must be an http:// or https:// URL", fn);
    drop_signer(c);
    ecdn_buf_free(&c->service);
    ecdn_buf_free(&c->host);
    ecdn_buf_free(&c->version);
    ecdn_buf_free(&c->url);
    c->service = t->b[0];
    c->host = t->b[1];
    c->version = t->b[2];
    c->url = t->b[3];
    for (i = 0; i < 4; i++) ecdn_buf_init(&t->b[i]); /* moved: the husk frees nothing */
    lua_pushboolean(L, 1);
    return 1;
}

#define V1_MAX_PARAMS 4096

/* client:_send_v1(action, params, timestamp, nonce, signature_method [, resend])
 * -> raw | nil, failure. Signature v1 with this client's credentials: params
 * is a flat table of strings ("Urls.0" = ...); sent as a form POST. */
static int l_send_v1(lua_State *L)
{
    static const char *fn = "ecdn.client:send_v1";
    static const char FORM[] = "application/x-www-form-urlencoded";
    client *c = check_open(L, 1, "send_v1");
    ecdn_v1_request q;
    ecdn_http_request hq;
    ecdn_header hs[2];
    ecdn_param *params, *work;
    const char *bad = NULL;
    size_t n = 0, cap = 0;
    scratch *s;
    int rc;

    memset(&q, 0, sizeof q);
    q.action.ptr = luaL_checklstring(L, 2, &q.action.len);
    luaL_checktype(L, 3, LUA_TTABLE);
    q.timestamp = opt_timestamp(L, 4, "send_v1");
    q.nonce = (long long)luaL_checkinteger(L, 5);
    q.signature_method.ptr = luaL_checklstring(L, 6, &q.signature_method.len);
    lua_settop(L, 7);
    q.method.ptr = "POST";
    q.method.len = 4;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "%s: params must map strings to strings", fn);
        if (++cap > V1_MAX_PARAMS) return luaL_error(L, "%s: more than %d params", fn, V1_MAX_PARAMS);
        lua_pop(L, 1);
    }
    params = (ecdn_param *)lua_newuserdata(L, (cap + 9) * 2 * sizeof *params); /* 8 */
    work = params + cap + 9;
    lua_pushnil(L);
    while (lua_next(L, 3)) { /* strings stay referenced by the table */
        if (n == cap) return luaL_error(L, "%s: params changed while read", fn);
        params[n].name.ptr = lua_tolstring(L, -2, &params[n].name.len);
        params[n].value.ptr = lua_tolstring(L, -1, &params[n].value.len);
        n++;
        lua_pop(L, 1);
    }
    q.params = params;
    q.nparams = n;
    s = new_scratch(L);
    {
        /* The v1 result is owned by the scratch's body buffer's neighbour: keep
         * it in a userdata of its own so a raise frees it. */
        ecdn_v1_result *r = (ecdn_v1_result *)lua_newuserdata(L, sizeof *r);
        ecdn_v1_result_init(r);
        luaL_getmetatable(L, V1_MT);
        lua_setmetatable(L, -2);
        /* Read only now: the allocations above may have run a finalizer that closed the client. */
        still_open(L, c, NULL, "send_v1");
        q.secret_id = str_of(&c->cred.secret_id);
        q.secret_key = str_of(&c->cred.secret_key);
        q.token = str_of(&c->cred.token);
        q.host = str_of(&c->host);
        q.version = str_of(&c->version);
        q.region = str_of(&c->region);
        rc = ecdn_sign_v1(&q, work, r, &bad);
        if (rc == ECDN_EFIELD || rc == ECDN_ERANGE)
            return luaL_error(L, "%s: cannot sign: field '%s' is invalid", fn, bad ? bad : "?");
        if (rc != ECDN_OK)
            return luaL_error(L, "%s: cannot sign (%s)", fn, rc == ECDN_ENOMEM ? "out of memory" : "OpenSSL");
        hs[0].name = "Content-Type";
        hs[0].value.ptr = FORM;
        hs[0].value.len = sizeof FORM - 1;
        hs[1].name = "X-TC-RequestClient";
        hs[1].value.ptr = ECDN_USER_AGENT;
        hs[1].value.len = sizeof ECDN_USER_AGENT - 1;
        memset(&hq, 0, sizeof hq);
        hq.method = "POST";
        hq.url = c->url.data;
        hq.headers = hs;
        hq.nheaders = 2;
        hq.body = r->query.data ? r->query.data : "";
        hq.len = r->query.len;
        hq.resend = lua_toboolean(L, 7);
        rc = ecdn_http_perform(c->http, &hq, &s->res);
        ecdn_v1_result_free(r);
    }
    n = (size_t)ecdn_push_http_outcome(L, rc, &s->res);
    ecdn_http_result_free(&s->res);
    return (int)n;
}

static int v1_gc(lua_State *L)
{
    ecdn_v1_result_free((ecdn_v1_result *)luaL_checkudata(L, 1, V1_MT));
    return 0;
}

/* client:_request{method, url, headers, body, resend} -> raw | nil, failure:
 * a request signed elsewhere (signature v1) over this client's connection. */
static int l_request(lua_State *L)
{
    client *c = check_open(L, 1, "request");
    return ecdn_lua_http_request(L, &c->http, 2, "ecdn.client:request");
}

/* Shared by __close and close(): idempotent. */
static int l_close(lua_State *L)
{
    client_free(check_client(L, 1), 0);
    return 0;
}

static int l_gc(lua_State *L)
{
    client_free(check_client(L, 1), 1);
    return 0;
}

static void set_str(lua_State *L, const char *field, const ecdn_buf *b)
{
    if (b->data == NULL) return;
    lua_pushlstring(L, b->data, b->len);
    lua_setfield(L, -2, field);
}

/* client:_info() -> the non-secret settings. */
static int l_info(lua_State *L)
{
    client *c = check_client(L, 1);
    lua_createtable(L, 0, 8);
    set_str(L, "service", &c->service);
    set_str(L, "endpoint", &c->url);
    set_str(L, "host", &c->host);
    set_str(L, "version", &c->version);
    set_str(L, "region", &c->region);
    set_str(L, "language", &c->language);
    lua_pushboolean(L, c->closed);
    lua_setfield(L, -2, "closed");
    return 1;
}

static int l_tostring(lua_State *L)
{
    client *c = check_client(L, 1);
    char id[9];
    size_t n;
    if (c->closed) {
        lua_pushliteral(L, "ecdn.client (closed)");
        return 1;
    }
    /* Only a prefix of the SecretId, never the key or token. */
    n = c->cred.secret_id.len < 8 ? c->cred.secret_id.len : 8;
    memcpy(id, c->cred.secret_id.data, n);
    id[n] = '\0';
    lua_pushfstring(L, "ecdn.client (%s, %s, secret_id %s...)", c->service.data, c->url.data, id);
    return 1;
}

static const luaL_Reg METHODS[] = {
    { "_send", l_send },
    { "_purge", l_purge },
    { "_purge_paths", l_purge_paths },
    { "_set_credentials", l_set_credentials },
    { "_start", l_start },
    { "_set_target", l_set_target },
    { "_request", l_request },
    { "_send_v1", l_send_v1 },
    { "_wait", l_wait },
    { "_active", l_active },
    { "_info", l_info },
    { "_close", l_close },
    { NULL, NULL },
};

void ecdn_open_client(lua_State *L)
{
    ecdn_gc_type(L, V1_MT, v1_gc);
    ecdn_gc_type(L, TARGET_MT, target_gc);
    ecdn_gc_type(L, CRED_MT, cred_gc);
    ecdn_gc_type(L, SCRATCH_MT, scratch_gc);

    luaL_newmetatable(L, CLIENT_MT);
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, CLIENT_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, CLIENT_MT);
    lua_setfield(L, -2, "__metatable");
    luaL_newlib(L, METHODS);
    /* The Lua layer adds the public methods (purge, call, close, ...). */
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "client_methods");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "new");
}
