/* The ecdn.client userdata: credentials, endpoint and one reused libcurl
 * handle. Raw methods hand status and body (or a network failure) back as
 * values; the Lua layer (lua/ecdn/client.lua) turns them into results and
 * error tables. Lua errors are raised only before curl runs, never inside. */
#include "lua_client.h"
#include "lua_util.h"
#include "http.h"
#include "purge.h"
#include "sign.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#define CLIENT_MT "ecdn.client"
#define SCRATCH_MT "ecdn.client_scratch"
#define FN_NEW "new"
#define MAX_OPTION_LEN 65536
#define MAX_URL 8192
#define MAX_PATH 4096

typedef struct {
    ecdn_http *http;
    /* Absent optional fields have data == NULL. All are wiped when freed. */
    ecdn_buf secret_id, secret_key, token;
    ecdn_buf service, host, version, region, language, endpoint;
    int closed;
} client;

/* Per-request C memory, owned by a userdata so a Lua error (out of memory
 * while pushing the answer) can never leak it or leave it unwiped. */
typedef struct {
    ecdn_tc3_result sig;
    ecdn_http_result res;
    ecdn_buf body;
} scratch;

static void client_free(client *c)
{
    ecdn_http_free(c->http);
    c->http = NULL;
    ecdn_buf_free(&c->secret_id);
    ecdn_buf_free(&c->secret_key);
    ecdn_buf_free(&c->token);
    ecdn_buf_free(&c->service);
    ecdn_buf_free(&c->host);
    ecdn_buf_free(&c->version);
    ecdn_buf_free(&c->region);
    ecdn_buf_free(&c->language);
    ecdn_buf_free(&c->endpoint);
    c->closed = 1;
}

static int scratch_gc(lua_State *L)
{
    scratch *s = (scratch *)luaL_checkudata(L, 1, SCRATCH_MT);
    ecdn_tc3_result_free(&s->sig);
    ecdn_http_result_free(&s->res);
    ecdn_buf_free(&s->body);
    return 0;
}

static scratch *new_scratch(lua_State *L)
{
    scratch *s = (scratch *)lua_newuserdata(L, sizeof *s);
    ecdn_tc3_result_init(&s->sig);
    ecdn_http_result_init(&s->res);
    ecdn_buf_init(&s->body);
    luaL_getmetatable(L, SCRATCH_MT);
    lua_setmetatable(L, -2);
    return s;
}

static client *check_client(lua_State *L, int idx)
{
    return (client *)luaL_checkudata(L, idx, CLIENT_MT);
}

static client *check_open(lua_State *L, int idx, const char *fn)
{
    client *c = check_client(L, idx);
    if (c->closed) luaL_error(L, "%s: client is closed", fn);
    return c;
}

static int has_nul(ecdn_str s)
{
    return s.ptr != NULL && memchr(s.ptr, '\0', s.len) != NULL;
}

/* Copies an option into dst; header values must be non-empty and free of CR/LF/NUL. */
static void copy_opt(lua_State *L, int t, const char *field, int required, int header, ecdn_buf *dst)
{
    ecdn_str s;
    ecdn_opt_string(L, t, FN_NEW, field, required, &s);
    if (s.ptr == NULL) {
        lua_pop(L, 1);
        return;
    }
    if (s.len == 0) ecdn_field_error(L, FN_NEW, field, "is empty");
    /* curl refuses header lines near 1 MB with a misleading "out of memory". */
    if (s.len > MAX_OPTION_LEN) ecdn_field_error(L, FN_NEW, field, "is longer than 65536 bytes");
    if (header ? ecdn_has_header_breaker(s) : has_nul(s))
        ecdn_field_error(L, FN_NEW, field, header ? "contains CR, LF or NUL" : "contains NUL");
    if (ecdn_buf_addstr(dst, s) != 0) luaL_error(L, "%s: out of memory", FN_NEW);
    lua_pop(L, 1); /* only now: s.ptr borrows from this value */
}

/* Seconds (fractions allowed) -> milliseconds, at least 1. */
static long opt_ms(lua_State *L, int t, const char *field, double def)
{
    double v = def;
    int type;
    lua_getfield(L, t, field);
    type = lua_type(L, -1);
    if (type != LUA_TNIL) {
        if (type != LUA_TNUMBER)
            luaL_error(L, "%s: field '%s' must be a number (got %s)", FN_NEW, field, lua_typename(L, type));
        v = (double)lua_tonumber(L, -1);
        if (!(v > 0 && v <= 86400.0)) ecdn_field_error(L, FN_NEW, field, "must be in (0, 86400] seconds");
    }
    lua_pop(L, 1);
    v = v * 1000.0 + 0.5;
    return v < 1.0 ? 1L : (long)v;
}

/* core.new{secret_id, secret_key, service, host, endpoint, version, [token,
 * region, language, timeout, connect_timeout, verify, cafile, proxy]}.
 * The Lua layer fills defaults and credentials; bad options raise here. */
static int l_new(lua_State *L)
{
    client *c;
    ecdn_http_config cfg;
    ecdn_str cafile, proxy;
    char err[256];
    const char *ep;

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

    copy_opt(L, 1, "secret_id", 1, 1, &c->secret_id);
    copy_opt(L, 1, "secret_key", 1, 1, &c->secret_key);
    copy_opt(L, 1, "token", 0, 1, &c->token);
    copy_opt(L, 1, "service", 1, 1, &c->service);
    copy_opt(L, 1, "host", 1, 1, &c->host);
    copy_opt(L, 1, "version", 1, 1, &c->version);
    copy_opt(L, 1, "region", 0, 1, &c->region);
    copy_opt(L, 1, "language", 0, 1, &c->language);
    copy_opt(L, 1, "endpoint", 1, 1, &c->endpoint);
    ep = c->endpoint.data;
    /* curl refuses strings over 8 MB; real values are far shorter. */
    if (c->endpoint.len > MAX_URL) ecdn_field_error(L, FN_NEW, "endpoint", "is too long");
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
        ecdn_field_error(L, FN_NEW, "endpoint", "must start with http:// or https://");

    memset(&cfg, 0, sizeof cfg);
    cfg.url = ep;
    cfg.timeout_ms = opt_ms(L, 1, "timeout", 10.0);
    cfg.connect_timeout_ms = opt_ms(L, 1, "connect_timeout", 5.0);
    cfg.verify = ecdn_opt_boolean(L, 1, FN_NEW, "verify", 1);
    lua_pop(L, 1);
    ecdn_opt_string(L, 1, FN_NEW, "cafile", 0, &cafile);
    ecdn_opt_string(L, 1, FN_NEW, "proxy", 0, &proxy);
    if (has_nul(cafile)) ecdn_field_error(L, FN_NEW, "cafile", "contains NUL");
    if (has_nul(proxy)) ecdn_field_error(L, FN_NEW, "proxy", "contains NUL");
    if (cafile.len > MAX_PATH) ecdn_field_error(L, FN_NEW, "cafile", "is too long");
    if (proxy.len > MAX_URL) ecdn_field_error(L, FN_NEW, "proxy", "is too long");
    cfg.cafile = cafile.ptr;
    cfg.proxy = proxy.ptr;
    c->http = ecdn_http_new(&cfg, err, sizeof err);
    if (c->http == NULL) return luaL_error(L, "%s: cannot set up libcurl: %s", FN_NEW, err);
    c->closed = 0;
    lua_pop(L, 2); /* cafile, proxy */
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
        luaL_error(L, "%s: timestamp must be a non-negative integer (unix seconds)", fn);
    return ts;
}

/* Signs body for action and POSTs it; pushes status, body or nil, "network",
 * curl code name, message. Everything that can raise happens before curl. */
static int sign_and_send(lua_State *L, client *c, scratch *s, ecdn_str action, ecdn_str body,
                         long long ts, const char *fn)
{
    static const char REQUEST_CLIENT[] = "lua-ecdn/0.1.0";
    ecdn_tc3_request q;
    ecdn_header headers[ECDN_TC3_MAX_HEADERS + 1];
    const char *bad = NULL;
    char tmp[32];
    size_t n;
    int rc;

    memset(&q, 0, sizeof q);
    q.secret_id = str_of(&c->secret_id);
    q.secret_key = str_of(&c->secret_key);
    q.token = str_of(&c->token);
    q.service = str_of(&c->service);
    q.host = str_of(&c->host);
    q.version = str_of(&c->version);
    q.region = str_of(&c->region);
    q.language = str_of(&c->language);
    q.action = action;
    q.payload = body;
    q.timestamp = ts;
    rc = ecdn_sign_tc3(&q, &s->sig, &bad);
    if (rc == ECDN_EFIELD || rc == ECDN_ERANGE)
        return luaL_error(L, "%s: cannot sign: field '%s' is invalid", fn, bad ? bad : "?");
    if (rc != ECDN_OK) return luaL_error(L, "%s: cannot sign (%s)", fn, rc == ECDN_ENOMEM ? "out of memory" : "OpenSSL");

    n = s->sig.nheaders;
    memcpy(headers, s->sig.headers, n * sizeof headers[0]);
    headers[n].name = "X-TC-RequestClient";
    headers[n].value.ptr = REQUEST_CLIENT;
    headers[n].value.len = sizeof REQUEST_CLIENT - 1;
    n++;

    /* No Lua calls from here until curl has returned. */
    rc = ecdn_http_post(c->http, headers, n, body.ptr, body.len, &s->res);
    ecdn_tc3_result_free(&s->sig);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "network");
        lua_pushstring(L, ecdn_curl_code_name(s->res.curl_code, tmp));
        lua_pushstring(L, s->res.error);
        return 4;
    }
    lua_pushinteger(L, (lua_Integer)s->res.status);
    lua_pushlstring(L, s->res.body.data ? s->res.body.data : "", s->res.body.len);
    ecdn_http_result_free(&s->res);
    return 2;
}

/* client:_send(action, body [, timestamp]) -> status, body | nil, "network", name, message */
static int l_send(lua_State *L)
{
    static const char *fn = "send";
    client *c = check_open(L, 1, fn);
    ecdn_str action, body;
    long long ts;
    scratch *s;

    action.ptr = luaL_checklstring(L, 2, &action.len);
    body.ptr = luaL_checklstring(L, 3, &body.len);
    ts = opt_timestamp(L, 4, fn);
    lua_settop(L, 3);
    luaL_checkstack(L, 6, fn);
    s = new_scratch(L);
    return sign_and_send(L, c, s, action, body, ts, fn);
}

/* client:_purge(urls [, timestamp]) -> as _send, or
 * nil, "client", index (1-based), problem name, reason, byte offset (1-based) */
static int l_purge(lua_State *L)
{
    static const char *fn = "purge";
    static const char ACTION[] = "PurgeUrlsCache";
    client *c = check_open(L, 1, fn);
    ecdn_str *urls, action, body;
    size_t n, k, i, index = 0, at = 0;
    long long ts;
    scratch *s;
    int problem, type;

    luaL_checktype(L, 2, LUA_TTABLE);
    ts = opt_timestamp(L, 3, fn);
    lua_settop(L, 2);
    luaL_checkstack(L, 8, fn);
    n = (size_t)lua_rawlen(L, 2);
    /* The first non-string ends the list before anything is allocated: the
     * raw length of a table with holes can be far larger than its contents. */
    for (k = 0; k < n; k++) {
        lua_rawgeti(L, 2, (lua_Integer)k + 1);
        type = lua_type(L, -1);
        lua_pop(L, 1);
        if (type != LUA_TSTRING) break;
    }
    if (k > SIZE_MAX / sizeof *urls - 1) return luaL_error(L, "%s: too many URLs", fn);
    urls = (ecdn_str *)lua_newuserdata(L, (k + 1) * sizeof *urls);
    /* Items stay referenced by the table at index 2 for the whole call. */
    for (i = 0; i < k; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        urls[i].ptr = lua_tolstring(L, -1, &urls[i].len);
        lua_pop(L, 1);
    }
    s = new_scratch(L);
    /* Problems are reported in list order: a bad URL before the non-string wins. */
    problem = (k == 0 && n > 0) ? ECDN_URL_OK : ecdn_purge_body(&s->body, urls, k, &index, &at);
    if (problem == ECDN_URL_NOMEM) return luaL_error(L, "%s: out of memory", fn);
    if (problem == ECDN_URL_OK && k < n) {
        problem = ECDN_URL_NOT_STRING;
        index = k;
        at = 0;
    }
    if (problem != ECDN_URL_OK) goto refused;
    action.ptr = ACTION;
    action.len = sizeof ACTION - 1;
    body.ptr = s->body.data;
    body.len = s->body.len;
    return sign_and_send(L, c, s, action, body, ts, fn);

refused:
    lua_pushnil(L);
    lua_pushliteral(L, "client");
    if (problem == ECDN_URL_EMPTY_LIST) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)index + 1);
    lua_pushstring(L, ecdn_url_problem_name(problem));
    lua_pushstring(L, ecdn_url_problem_text(problem));
    lua_pushinteger(L, (lua_Integer)at + 1);
    return 6;
}

/* Shared by __gc, __close and close(): idempotent. */
static int l_close(lua_State *L)
{
    client *c = check_client(L, 1);
    client_free(c);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_gc(lua_State *L)
{
    client *c = check_client(L, 1);
    client_free(c);
    return 0;
}

static void set_str(lua_State *L, const char *field, const ecdn_buf *b)
{
    if (b->data == NULL) return;
    lua_pushlstring(L, b->data, b->len);
    lua_setfield(L, -2, field);
}

/* client:_info() -> the non-secret settings, for the Lua layer and humans. */
static int l_info(lua_State *L)
{
    client *c = check_client(L, 1);
    lua_createtable(L, 0, 8);
    set_str(L, "service", &c->service);
    set_str(L, "endpoint", &c->endpoint);
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
    n = c->secret_id.len < 8 ? c->secret_id.len : 8;
    memcpy(id, c->secret_id.data, n);
    id[n] = '\0';
    lua_pushfstring(L, "ecdn.client (%s, %s, secret_id %s...)", c->service.data, c->endpoint.data, id);
    return 1;
}

static const luaL_Reg METHODS[] = {
    { "_send", l_send },
    { "_purge", l_purge },
    { "_info", l_info },
    { "close", l_close },
    { NULL, NULL },
};

void ecdn_open_client(lua_State *L)
{
    luaL_newmetatable(L, SCRATCH_MT);
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, CLIENT_MT);
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, CLIENT_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "ecdn.client");
    lua_setfield(L, -2, "__metatable");
    luaL_newlib(L, METHODS);
    /* Shared with the Lua layer, which adds purge() and call(). */
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "client_methods");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "new");
}
