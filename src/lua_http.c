#include "lua_http.h"
#include "lua_util.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define HTTP_MT "ecdn.http"
#define MAX_OPTION_LEN 65536
#define MAX_HEADERS 64

typedef struct {
    ecdn_http *http;
} transport;

static int has_nul(ecdn_str s)
{
    return s.ptr != NULL && memchr(s.ptr, '\0', s.len) != NULL;
}

/* Seconds (fractions allowed) -> milliseconds, at least 1. */
static long opt_ms(lua_State *L, int t, const char *fn, const char *field, double def)
{
    double v = def;
    int type;
    lua_getfield(L, t, field);
    type = lua_type(L, -1);
    if (type != LUA_TNIL) {
        if (type != LUA_TNUMBER)
            luaL_error(L, "%s: field '%s' must be a number (got %s)", fn, field, lua_typename(L, type));
        v = (double)lua_tonumber(L, -1);
        if (!(v > 0 && v <= 86400.0)) ecdn_field_error(L, fn, field, "must be in (0, 86400] seconds");
    }
    lua_pop(L, 1);
    v = v * 1000.0 + 0.5;
    return v < 1.0 ? 1L : (long)v;
}

static const char *opt_path(lua_State *L, int t, const char *fn, const char *field, int url)
{
    ecdn_str s;
    ecdn_opt_string(L, t, fn, field, 0, &s);
    if (url ? ecdn_has_header_breaker(s) : has_nul(s))
        ecdn_field_error(L, fn, field, url ? "contains CR, LF or NUL" : "contains NUL");
    if (s.len > MAX_OPTION_LEN) ecdn_field_error(L, fn, field, "is longer than 65536 bytes");
    return s.ptr;
}

void ecdn_http_config_from_lua(lua_State *L, int t, const char *fn, ecdn_http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    luaL_checkstack(L, 6, fn);
    cfg->timeout_ms = opt_ms(L, t, fn, "timeout", 10.0);
    cfg->connect_timeout_ms = opt_ms(L, t, fn, "connect_timeout", 5.0);
    cfg->verify = ecdn_opt_boolean(L, t, fn, "verify", 1);
    lua_pop(L, 1);
    cfg->cafile = opt_path(L, t, fn, "cafile", 0);   /* both stay on the stack */
    cfg->proxy = opt_path(L, t, fn, "proxy", 1);
}

/* "Name: value\r\n" lines -> t[lower-case name] = trimmed value; repeated
 * names are joined with ", " as RFC 9110 allows. */
static void push_headers(lua_State *L, const ecdn_buf *b)
{
    const char *p = b->data, *end = b->data + b->len;
    char name[64];
    lua_createtable(L, 0, 8);
    if (p == NULL) return;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *v, *ve;
        size_t nlen, i;
        if (eol == NULL) eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && (nlen = (size_t)(colon - p)) > 0 && nlen < sizeof name) {
            for (i = 0; i < nlen; i++) {
                char c = p[i];
                name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            }
            v = colon + 1;
            ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushlstring(L, name, nlen);
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isstring(L, -1)) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_rawset(L, -3);
        }
        p = eol + 1;
    }
}

int ecdn_push_http_outcome(lua_State *L, int rc, const ecdn_http_result *r)
{
    char tmp[32];
    luaL_checkstack(L, 6, "http");
    if (rc == 0) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, (lua_Integer)r->status);
        lua_setfield(L, -2, "status");
        push_headers(L, &r->headers);
        lua_setfield(L, -2, "headers");
        lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
        lua_setfield(L, -2, "body");
        lua_pushinteger(L, (lua_Integer)r->attempts);
        lua_setfield(L, -2, "attempts");
        return 1;
    }
    lua_pushnil(L);
    lua_createtable(L, 0, 8);
    lua_pushliteral(L, "network");
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, ecdn_http_failure_name(r, tmp));
    lua_setfield(L, -2, "detail");
    lua_pushstring(L, r->error);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, r->sent);
    lua_setfield(L, -2, "sent");
    lua_pushboolean(L, r->retryable);
    lua_setfield(L, -2, "retryable");
    lua_pushboolean(L, r->tls);
    lua_setfield(L, -2, "tls");
    lua_pushinteger(L, (lua_Integer)r->attempts);
    lua_setfield(L, -2, "attempts");
    if (r->status) {
        lua_pushinteger(L, (lua_Integer)r->status);
        lua_setfield(L, -2, "status");
    }
    return 2;
}

/* ---- the ecdn.http userdata --------------------------------------------- */

/* Per-request C memory owned by a userdata, so a Lua error while building
 * the answer never leaks it. */
typedef struct {
    ecdn_http_result res;
    ecdn_header headers[MAX_HEADERS];
} http_scratch;

#define HTTP_SCRATCH_MT "ecdn.http_scratch"

static int scratch_gc(lua_State *L)
{
    http_scratch *s = (http_scratch *)luaL_checkudata(L, 1, HTTP_SCRATCH_MT);
    ecdn_http_result_free(&s->res);
    return 0;
}

static transport *check_transport(lua_State *L, const char *fn)
{
    transport *t = (transport *)luaL_checkudata(L, 1, HTTP_MT);
    if (t->http == NULL) luaL_error(L, "%s: transport is closed", fn);
    return t;
}

/* core.http{timeout, connect_timeout, verify, cafile, proxy} */
static int l_http(lua_State *L)
{
    static const char *fn = "ecdn.http";
    ecdn_http_config cfg;
    transport *t;
    char err[256];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    t = (transport *)lua_newuserdata(L, sizeof *t);
    t->http = NULL;
    luaL_getmetatable(L, HTTP_MT);
    lua_setmetatable(L, -2);
    ecdn_http_config_from_lua(L, 1, fn, &cfg);
    t->http = ecdn_http_new(&cfg, err, sizeof err);
    if (t->http == NULL) return luaL_error(L, "%s: cannot set up libcurl: %s", fn, err);
    lua_settop(L, 2);
    return 1;
}

int ecdn_lua_http_request(lua_State *L, ecdn_http *const *hp, int idx, const char *fn)
{
    ecdn_http_request q;
    ecdn_str method, url, body;
    http_scratch *s;
    size_t n = 0;
    int rc, hidx;

    luaL_checktype(L, idx, LUA_TTABLE);
    lua_settop(L, idx);
    ecdn_opt_string(L, idx, fn, "method", 0, &method);
    ecdn_opt_string(L, idx, fn, "url", 1, &url);
    ecdn_opt_string(L, idx, fn, "body", 0, &body);
    memset(&q, 0, sizeof q);
    q.method = method.ptr ? method.ptr : "POST";
    if (strcmp(q.method, "POST") != 0 && strcmp(q.method, "GET") != 0)
        ecdn_field_error(L, fn, "method", "must be \"POST\" or \"GET\"");
    if (has_nul(url) || (strncmp(url.ptr, "http://", 7) != 0 && strncmp(url.ptr, "https://", 8) != 0))
        ecdn_field_error(L, fn, "url", "must be an http:// or https:// URL without NUL");
    q.url = url.ptr;
    q.body = body.ptr ? body.ptr : "";
    q.len = body.ptr && strcmp(q.method, "POST") == 0 ? body.len : 0; /* a GET sends no body */
    q.resend = ecdn_opt_boolean(L, idx, fn, "resend", 0);
    s = (http_scratch *)lua_newuserdata(L, sizeof *s);
    ecdn_http_result_init(&s->res);
    luaL_getmetatable(L, HTTP_SCRATCH_MT);
    lua_setmetatable(L, -2);
    lua_getfield(L, idx, "headers");  /* names and values stay referenced */
    hidx = lua_gettop(L);
    if (!lua_isnil(L, hidx)) {
        if (!lua_istable(L, hidx)) ecdn_field_error(L, fn, "headers", "must be a table of name = value");
        lua_pushnil(L);
        while (lua_next(L, hidx)) {
            ecdn_str name;
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                ecdn_field_error(L, fn, "headers", "must map strings to strings");
            if (n == MAX_HEADERS) ecdn_field_error(L, fn, "headers", "has too many entries");
            name.ptr = lua_tolstring(L, -2, &name.len);
            s->headers[n].name = name.ptr;
            s->headers[n].value.ptr = lua_tolstring(L, -1, &s->headers[n].value.len);
            if (ecdn_has_header_breaker(s->headers[n].value) || name.len == 0 || has_nul(name) ||
                strpbrk(name.ptr, ":\r\n \t"))
                ecdn_field_error(L, fn, "headers", "has a name or value with CR, LF, NUL or a bad name");
            n++;
            lua_pop(L, 1);
        }
    }
    q.headers = s->headers;
    q.nheaders = n;
    /* Read only now: reading the table (metamethods) and allocating (finalizers)
     * may have closed the owner. */
    if (*hp == NULL) return luaL_error(L, "%s: closed during the call", fn);
    rc = ecdn_http_perform(*hp, &q, &s->res);
    n = (size_t)ecdn_push_http_outcome(L, rc, &s->res);
    ecdn_http_result_free(&s->res);
    return (int)n;
}

/* transport:request{method = "POST"|"GET", url, headers = {name = value}, body, resend} */
static int l_request(lua_State *L)
{
    static const char *fn = "ecdn.http:request";
    transport *t = check_transport(L, fn);
    return ecdn_lua_http_request(L, &t->http, 2, fn);
}

static int l_close(lua_State *L)
{
    transport *t = (transport *)luaL_checkudata(L, 1, HTTP_MT);
    ecdn_http_free(t->http);
    t->http = NULL;
    lua_pushboolean(L, 1);
    return 1;
}

/* core.catch_interrupts(): SIGINT then ends the request in flight, and
 * SIGPIPE is ignored (for CLIs). */
static int l_catch_interrupts(lua_State *L)
{
    if (ecdn_http_catch_interrupts() != 0) return luaL_error(L, "catch_interrupts: cannot install a handler");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_interrupted(lua_State *L)
{
    lua_pushboolean(L, ecdn_http_interrupted());
    return 1;
}

/* core.now() -> seconds on a monotonic clock (for limiters and deadlines). */
static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* core.sleep(seconds): blocks the calling thread (not for nginx). Returns
 * early, false, when SIGINT arrives under catch_interrupts. */
static int l_sleep(lua_State *L)
{
    lua_Number secs = luaL_checknumber(L, 1);
    struct timespec ts;
    if (!(secs > 0)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (secs > 86400) secs = 86400;
    ts.tv_sec = (time_t)secs;
    ts.tv_nsec = (long)((secs - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !ecdn_http_interrupted()) {}
    lua_pushboolean(L, !ecdn_http_interrupted());
    return 1;
}

static const luaL_Reg HTTP_METHODS[] = {
    { "request", l_request },
    { "close", l_close },
    { NULL, NULL },
};

void ecdn_open_http(lua_State *L)
{
    ecdn_gc_type(L, HTTP_SCRATCH_MT, scratch_gc);

    luaL_newmetatable(L, HTTP_MT);
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    luaL_newlib(L, HTTP_METHODS);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_http);
    lua_setfield(L, -2, "http");
    lua_pushcfunction(L, l_catch_interrupts);
    lua_setfield(L, -2, "catch_interrupts");
    lua_pushcfunction(L, l_interrupted);
    lua_setfield(L, -2, "interrupted");
    lua_pushcfunction(L, l_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
}
