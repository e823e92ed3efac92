/* core.sign_tc3 and core.sign_v1: pure functions, no network. */
#include "lua_sign.h"
#include "lua_util.h"
#include "sign.h"

#include <stdio.h>
#include <string.h>

#define TC3_RESULT_MT "ecdn.tc3_result"
#define V1_RESULT_MT "ecdn.v1_result"

/* Results live in userdata with __gc, so a memory error raised while pushing
 * the answer cannot leak (or leave unwiped) the signer's buffers. */
static int tc3_result_gc(lua_State *L)
{
    ecdn_tc3_result_free((ecdn_tc3_result *)luaL_checkudata(L, 1, TC3_RESULT_MT));
    return 0;
}

static int v1_result_gc(lua_State *L)
{
    ecdn_v1_result_free((ecdn_v1_result *)luaL_checkudata(L, 1, V1_RESULT_MT));
    return 0;
}

static void push_buf(lua_State *L, const ecdn_buf *b)
{
    lua_pushlstring(L, b->data ? b->data : "", b->len);
}

static int sign_error(lua_State *L, const char *fn, int rc, const char *bad)
{
    if (rc == ECDN_EFIELD)
        return ecdn_field_error(L, fn, bad, "is empty, invalid, or contains CR, LF or NUL");
    if (rc == ECDN_ERANGE) return ecdn_field_error(L, fn, bad, "is out of range");
    if (rc == ECDN_ENOMEM) return luaL_error(L, "%s: out of memory", fn);
    return luaL_error(L, "%s: OpenSSL failure", fn);
}

static void tc3_from_lua(lua_State *L, int t, const char *fn, ecdn_tc3_request *q)
{
    memset(q, 0, sizeof *q);
    ecdn_opt_string(L, t, fn, "secret_id", 1, &q->secret_id);
    ecdn_opt_string(L, t, fn, "secret_key", 1, &q->secret_key);
    ecdn_opt_string(L, t, fn, "service", 1, &q->service);
    ecdn_opt_string(L, t, fn, "host", 1, &q->host);
    ecdn_opt_string(L, t, fn, "action", 1, &q->action);
    ecdn_opt_string(L, t, fn, "version", 1, &q->version);
    ecdn_opt_string(L, t, fn, "payload", 1, &q->payload);
    ecdn_opt_string(L, t, fn, "region", 0, &q->region);
    ecdn_opt_string(L, t, fn, "token", 0, &q->token);
    ecdn_opt_string(L, t, fn, "language", 0, &q->language);
    ecdn_opt_string(L, t, fn, "content_type", 0, &q->content_type);
    q->timestamp = ecdn_opt_integer(L, t, fn, "timestamp", 1, 0, 0, ECDN_MAX_TIMESTAMP);
    q->sign_action = ecdn_opt_boolean(L, t, fn, "sign_action", 0);
}

static int l_sign_tc3(lua_State *L)
{
    static const char *fn = "sign_tc3";
    ecdn_tc3_request q;
    ecdn_tc3_result *r;
    const char *bad;
    size_t i;
    int rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    tc3_from_lua(L, 1, fn, &q);

    r = (ecdn_tc3_result *)lua_newuserdata(L, sizeof *r);
    ecdn_tc3_result_init(r);
    luaL_getmetatable(L, TC3_RESULT_MT);
    lua_setmetatable(L, -2);
    rc = ecdn_sign_tc3(&q, r, &bad);
    if (rc != ECDN_OK) return sign_error(L, fn, rc, bad);

    lua_createtable(L, 0, 5);
    lua_pushstring(L, r->signature);
    lua_setfield(L, -2, "signature");
    push_buf(L, &r->authorization);
    lua_setfield(L, -2, "authorization");
    push_buf(L, &r->canonical_request);
    lua_setfield(L, -2, "canonical_request");
    push_buf(L, &r->string_to_sign);
    lua_setfield(L, -2, "string_to_sign");
    lua_createtable(L, 0, (int)r->nheaders);
    for (i = 0; i < r->nheaders; i++) {
        lua_pushlstring(L, r->headers[i].value.ptr, r->headers[i].value.len);
        lua_setfield(L, -2, r->headers[i].name);
    }
    lua_setfield(L, -2, "headers");
    ecdn_tc3_result_free(r);
    return 1;
}

/* Pushes a number param as the SDKs send it: integers without ".0". */
static void number_param(lua_State *L, int idx, const char *fn)
{
    long long v = 0;
    lua_Number d = lua_tonumber(L, idx);
    char tmp[64];
    if (ecdn_to_integer(L, idx, &v)) snprintf(tmp, sizeof tmp, "%lld", v);
    else if (d == d && d - d == 0) snprintf(tmp, sizeof tmp, "%.17g", (double)d);
    else luaL_error(L, "%s: field 'params' holds a number that is not finite", fn);
    lua_pushstring(L, tmp);
}

static int l_sign_v1(lua_State *L)
{
    static const char *fn = "sign_v1";
    ecdn_v1_request q;
    ecdn_v1_result *r;
    ecdn_param *params, *work;
    const char *bad;
    size_t n = 0, cap;
    int rc, ptab, anchor;

    luaL_checktype(L, 1, LUA_TTABLE);
    memset(&q, 0, sizeof q);
    ecdn_opt_string(L, 1, fn, "secret_id", 1, &q.secret_id);
    ecdn_opt_string(L, 1, fn, "secret_key", 1, &q.secret_key);
    ecdn_opt_string(L, 1, fn, "host", 1, &q.host);
    ecdn_opt_string(L, 1, fn, "action", 1, &q.action);
    ecdn_opt_string(L, 1, fn, "version", 1, &q.version);
    ecdn_opt_string(L, 1, fn, "method", 0, &q.method);
    ecdn_opt_string(L, 1, fn, "path", 0, &q.path);
    ecdn_opt_string(L, 1, fn, "region", 0, &q.region);
    ecdn_opt_string(L, 1, fn, "token", 0, &q.token);
    ecdn_opt_string(L, 1, fn, "signature_method", 0, &q.signature_method);
    q.timestamp = ecdn_opt_integer(L, 1, fn, "timestamp", 1, 0, 0, ECDN_MAX_TIMESTAMP);
    q.nonce = ecdn_opt_integer(L, 1, fn, "nonce", 1, 0, 1, 0x7fffffffffffffffLL);

    luaL_checkstack(L, 4, "sign_v1");
    lua_getfield(L, 1, "params");
    ptab = lua_gettop(L);
    if (lua_type(L, ptab) != LUA_TTABLE) {
        if (lua_isnil(L, ptab)) { lua_newtable(L); lua_replace(L, ptab); }
        else return luaL_error(L, "%s: field 'params' must be a table (got %s)", fn, luaL_typename(L, ptab));
    }
    cap = 0;
    lua_pushnil(L);
    while (lua_next(L, ptab)) { cap++; lua_pop(L, 1); }
    if (cap > 1000000) return luaL_error(L, "%s: field 'params' has too many entries", fn);

    params = (ecdn_param *)lua_newuserdata(L, (cap + 9) * sizeof *params * 2);
    work = params + cap + 9;
    lua_newtable(L); /* anchors strings made from numbers */
    anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, ptab)) {
        int kt = lua_type(L, -2), vt = lua_type(L, -1);
        if (kt != LUA_TSTRING)
            return luaL_error(L, "%s: field 'params' keys must be strings (got %s)", fn, lua_typename(L, kt));
        if (n >= cap) return luaL_error(L, "%s: field 'params' changed while read", fn);
        params[n].name.ptr = lua_tolstring(L, -2, &params[n].name.len);
        if (vt == LUA_TNUMBER) {
            number_param(L, -1, fn);
            params[n].value.ptr = lua_tolstring(L, -1, &params[n].value.len);
            lua_rawseti(L, anchor, (int)n + 1);
        } else if (vt == LUA_TSTRING) {
            params[n].value.ptr = lua_tolstring(L, -1, &params[n].value.len);
        } else {
            return luaL_error(L, "%s: field 'params' values must be strings or numbers (got %s)",
                              fn, lua_typename(L, vt));
        }
        n++;
        lua_pop(L, 1);
    }
    q.params = params;
    q.nparams = n;

    r = (ecdn_v1_result *)lua_newuserdata(L, sizeof *r);
    ecdn_v1_result_init(r);
    luaL_getmetatable(L, V1_RESULT_MT);
    lua_setmetatable(L, -2);
    rc = ecdn_sign_v1(&q, work, r, &bad);
    if (rc != ECDN_OK) return sign_error(L, fn, rc, bad);

    lua_createtable(L, 0, 3);
    lua_pushstring(L, r->signature);
    lua_setfield(L, -2, "signature");
    push_buf(L, &r->string_to_sign);
    lua_setfield(L, -2, "string_to_sign");
    push_buf(L, &r->query);
    lua_setfield(L, -2, "query");
    ecdn_v1_result_free(r);
    return 1;
}

void ecdn_open_sign(lua_State *L)
{
    luaL_newmetatable(L, TC3_RESULT_MT);
    lua_pushcfunction(L, tc3_result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, V1_RESULT_MT);
    lua_pushcfunction(L, v1_result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_sign_tc3);
    lua_setfield(L, -2, "sign_tc3");
    lua_pushcfunction(L, l_sign_v1);
    lua_setfield(L, -2, "sign_v1");
}
