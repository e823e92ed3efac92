/* core.sign_tc3 and core.sign_v1: pure functions, no network; and a look at
 * (and a wipe of) the TC3 signer's derived-key cache. */
#include "lua_sign.h"
#include "lua_util.h"
#include "sign.h"

#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

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

/* Upvalues of sign_tc3: its scratch result, then every name it reads or
 * sets as an interned Lua string, so no call converts a C string (the
 * conversion was a tenth of a signature). */
enum { S_ID = 1, S_KEY, S_SERVICE, S_HOST, S_ACTION, S_VERSION, S_PAYLOAD, S_REGION, S_TOKEN, S_LANGUAGE,
       S_CT, S_TIMESTAMP, S_SIGN_ACTION, S_DEBUG, S_NFIELDS = S_DEBUG };
static const char *const TC3_FIELDS[S_NFIELDS + 1] = {
    NULL, "secret_id", "secret_key", "service", "host", "action", "version", "payload", "region", "token",
    "language", "content_type", "timestamp", "sign_action", "debug"
};
enum { R_SIGNATURE, R_AUTHORIZATION, R_CANONICAL, R_STS, R_HEADERS, R_N };
static const char *const TC3_RESULT_KEYS[R_N] = {
    "signature", "authorization", "canonical_request", "string_to_sign", "headers"
};
#define UP_SCRATCH 1
#define UP_FIELD(i) (1 + (i))                              /* i = S_ID .. S_DEBUG */
#define UP_RESULT(i) (2 + S_NFIELDS + (i))                 /* i = R_SIGNATURE .. R_HEADERS */
#define UP_HEADER(i) (2 + S_NFIELDS + R_N + (i))           /* i = ECDN_TC3_H_* */
#define TC3_NUPVALUES (1 + S_NFIELDS + R_N + ECDN_TC3_MAX_HEADERS)

/* Pushes t[name] (metamethods honoured, like lua_getfield); returns its type. */
static int get_field(lua_State *L, int field)
{
    lua_pushvalue(L, lua_upvalueindex(UP_FIELD(field)));
    lua_gettable(L, 1);
    return lua_type(L, -1);
}

/* The same rules and messages as ecdn_opt_string / _integer / _boolean. */
static void tc3_string(lua_State *L, const char *fn, int field, int required, ecdn_str *out)
{
    int type = get_field(L, field);
    out->ptr = NULL;
    out->len = 0;
    if (type == LUA_TSTRING) {
        out->ptr = lua_tolstring(L, -1, &out->len);
    } else if (type == LUA_TNIL) {
        if (required) ecdn_field_error(L, fn, TC3_FIELDS[field], "is missing");
    } else {
        luaL_error(L, "%s: field '%s' must be a string (got %s)", fn, TC3_FIELDS[field], lua_typename(L, type));
    }
}

static int tc3_boolean(lua_State *L, const char *fn, int field, int def)
{
    int type = get_field(L, field);
    if (type == LUA_TNIL) return def;
    if (type != LUA_TBOOLEAN)
        luaL_error(L, "%s: field '%s' must be a boolean (got %s)", fn, TC3_FIELDS[field], lua_typename(L, type));
    return lua_toboolean(L, -1);
}

/* call = 1 (sign_tc3): every field, field i left at stack index 1 + i.
 * call = 0 (tc3_signer): the account's fields alone (no action, payload,
 * timestamp or debug), in the same order and with the same messages. */
static void tc3_from_lua(lua_State *L, const char *fn, ecdn_tc3_request *q, int call)
{
    int type;
    long long ts = 0;
    memset(q, 0, sizeof *q);
    luaL_checkstack(L, S_NFIELDS + 8, fn);
    tc3_string(L, fn, S_ID, 1, &q->secret_id);
    tc3_string(L, fn, S_KEY, 1, &q->secret_key);
    tc3_string(L, fn, S_SERVICE, 1, &q->service);
    tc3_string(L, fn, S_HOST, 1, &q->host);
    if (call) tc3_string(L, fn, S_ACTION, 1, &q->action);
    tc3_string(L, fn, S_VERSION, 1, &q->version);
    if (call) tc3_string(L, fn, S_PAYLOAD, 1, &q->payload);
    tc3_string(L, fn, S_REGION, 0, &q->region);
    tc3_string(L, fn, S_TOKEN, 0, &q->token);
    tc3_string(L, fn, S_LANGUAGE, 0, &q->language);
    tc3_string(L, fn, S_CT, 0, &q->content_type);
    if (call) {
        type = get_field(L, S_TIMESTAMP);
        if (type == LUA_TNIL) ecdn_field_error(L, fn, "timestamp", "is missing");
        if (type != LUA_TNUMBER)
            luaL_error(L, "%s: field 'timestamp' must be a number (got %s)", fn, lua_typename(L, type));
        if (!ecdn_to_integer(L, -1, &ts) || ts < 0 || ts > ECDN_MAX_TIMESTAMP)
            ecdn_field_error(L, fn, "timestamp", "must be an integer in [0, 253402300799]");
        q->timestamp = ts;
    }
    q->sign_action = tc3_boolean(L, fn, S_SIGN_ACTION, 0);
    if (call) q->omit_debug = !tc3_boolean(L, fn, S_DEBUG, 1);
}

/* One result per Lua state, reused by every call (its buffers keep their
 * capacity; they hold no secret key, and are emptied and wiped by the next
 * call and by __gc). A call made while another is still pushing its answer
 * (from a finalizer the collector runs meanwhile) gets a result of its own. */
typedef struct {
    ecdn_tc3_result r;
    int busy;
} tc3_scratch;

static int tc3_scratch_gc(lua_State *L)
{
    tc3_scratch *sc = (tc3_scratch *)lua_touserdata(L, 1);
    ecdn_tc3_result_free(&sc->r);
    return 0;
}

/* Stack slots of the Lua strings a header value may borrow (0: none; the
 * value is then pushed from C). */
typedef struct {
    int host, action, version, content_type;
} value_slots;

/* A header value borrowed from a request field is that field's Lua string. */
static void push_header_value(lua_State *L, const ecdn_tc3_request *q, const value_slots *vs, ecdn_str v)
{
    if (vs->host && v.ptr == q->host.ptr) lua_pushvalue(L, vs->host);
    else if (vs->action && v.ptr == q->action.ptr) lua_pushvalue(L, vs->action);
    else if (vs->version && v.ptr == q->version.ptr) lua_pushvalue(L, vs->version);
    else if (vs->content_type && q->content_type.ptr && v.ptr == q->content_type.ptr)
        lua_pushvalue(L, vs->content_type);
    else lua_pushlstring(L, v.ptr, v.len);
}

static void set_result(lua_State *L, int key, const char *p, size_t n)
{
    lua_pushvalue(L, lua_upvalueindex(UP_RESULT(key)));
    lua_pushlstring(L, p ? p : "", n);
    lua_rawset(L, -3);
}

/* The scratch result when free, else one of the call's own (a call made
 * from a finalizer while another pushes its answer). */
static ecdn_tc3_result *take_result(lua_State *L, tc3_scratch *sc, int *own)
{
    ecdn_tc3_result *r;
    *own = sc->busy;
    if (!*own) {
        sc->busy = 1;
        return &sc->r;
    }
    r = (ecdn_tc3_result *)lua_newuserdata(L, sizeof *r);
    ecdn_tc3_result_init(r);
    luaL_getmetatable(L, TC3_RESULT_MT);
    lua_setmetatable(L, -2);
    return r;
}

static void release_result(tc3_scratch *sc, ecdn_tc3_result *r, int own)
{
    if (own) {
        ecdn_tc3_result_free(r);
    } else {
        /* The signature is wiped now; the debug strings (nothing secret in
         * them) are emptied by the next call. Capacity is kept. */
        ecdn_buf_reset(&r->authorization);
        OPENSSL_cleanse(r->signature, sizeof r->signature);
        r->nheaders = 0;
        sc->busy = 0;
    }
}

/* Pushes {signature, authorization, headers [, canonical_request,
 * string_to_sign]}: the answer of sign_tc3 and of tc3_signer:sign. A memory
 * error raised here leaves the scratch busy: later calls then take the
 * own-result path, which is slower but as correct. */
static void push_tc3_result(lua_State *L, const ecdn_tc3_request *q, const ecdn_tc3_result *r,
                            const value_slots *vs)
{
    size_t i;
    int h = 0;
    lua_createtable(L, 0, q->omit_debug ? 3 : 5);
    set_result(L, R_SIGNATURE, r->signature, 64);
    set_result(L, R_AUTHORIZATION, r->authorization.data, r->authorization.len);
    if (!q->omit_debug) {
        set_result(L, R_CANONICAL, r->canonical_request.data, r->canonical_request.len);
        set_result(L, R_STS, r->string_to_sign.data, r->string_to_sign.len);
    }
    lua_pushvalue(L, lua_upvalueindex(UP_RESULT(R_HEADERS)));
    lua_createtable(L, 0, (int)r->nheaders);
    for (i = 0; i < r->nheaders; i++) {
        while (h < ECDN_TC3_MAX_HEADERS - 1 && ecdn_tc3_header_names[h] != r->headers[i].name) h++;
        lua_pushvalue(L, lua_upvalueindex(UP_HEADER(h)));
        push_header_value(L, q, vs, r->headers[i].value);
        lua_rawset(L, -3);
    }
    lua_rawset(L, -3);
}

static int l_sign_tc3(lua_State *L)
{
    static const char *fn = "sign_tc3";
    static const value_slots vs = { 1 + S_HOST, 1 + S_ACTION, 1 + S_VERSION, 1 + S_CT };
    ecdn_tc3_request q;
    ecdn_tc3_result *r;
    tc3_scratch *sc = (tc3_scratch *)lua_touserdata(L, lua_upvalueindex(UP_SCRATCH));
    const char *bad;
    int rc, own;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    tc3_from_lua(L, fn, &q, 1);
    r = take_result(L, sc, &own);
    rc = ecdn_sign_tc3(&q, r, &bad);
    if (rc != ECDN_OK) {
        release_result(sc, r, own);
        return sign_error(L, fn, rc, bad);
    }
    push_tc3_result(L, &q, r, &vs);
    release_result(sc, r, own);
    return 1;
}

/* ---- core.tc3_signer: the prepared signer -------------------------------- */

#define SIGNER_MT "ecdn.tc3_signer"

/* A call's answer borrows the prepared fields (header values point into
 * them) while Lua allocates, and an allocation may run a finalizer that
 * closes this signer: close() is put off until no call is building an
 * answer (in_use), and a closed signer refuses new calls at once. */
typedef struct {
    ecdn_tc3_prepared *p;        /* NULL once freed */
    int in_use;                  /* calls between signing and the end of their answer */
    int closed;                  /* close() was called (p may live on while in_use) */
} tc3_signer_ud;

/* core.tc3_signer{secret_id, secret_key, service, host, version, [region,
 * token, language, content_type, sign_action]} -> signer: the fields read
 * and checked once, with sign_tc3's rules and messages (other fields are
 * not read); action, payload and timestamp come with each signature. */
static int l_tc3_signer(lua_State *L)
{
    static const char *fn = "tc3_signer";
    ecdn_tc3_request q;
    tc3_signer_ud *u;
    const char *bad;
    int rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    tc3_from_lua(L, fn, &q, 0);

    u = (tc3_signer_ud *)lua_newuserdata(L, sizeof *u);
    memset(u, 0, sizeof *u);
    u->closed = 1;               /* until made */
    luaL_getmetatable(L, SIGNER_MT);
    lua_setmetatable(L, -2);
    u->p = ecdn_tc3_prepare(&q, &rc, &bad);
    if (u->p == NULL) return sign_error(L, fn, rc, bad);
    u->closed = 0;
    return 1;
}

static void signer_free(tc3_signer_ud *u)
{
    ecdn_tc3_prepared_free(u->p); /* wipes */
    u->p = NULL;
}

/* The end of a call that held the signer: a close() made meanwhile happens now. */
static void signer_release(tc3_signer_ud *u)
{
    if (--u->in_use == 0 && u->closed) signer_free(u);
}

/* Reads (action, payload, timestamp) at 2..4 and signs them into *r (the
 * scratch's, or the call's own: see take_result); *q gets the request
 * signed, for push_tc3_result. Returns the signer, held: the caller builds
 * its answer, then calls release_result and signer_release. */
static tc3_signer_ud *signer_sign(lua_State *L, const char *fn, int omit_debug, tc3_scratch *sc,
                                  ecdn_tc3_result **r, int *own, ecdn_tc3_request *q)
{
    tc3_signer_ud *u = (tc3_signer_ud *)luaL_checkudata(L, 1, SIGNER_MT);
    ecdn_str action, payload;
    long long ts = 0;
    const char *bad;
    int rc;
    action.ptr = luaL_checklstring(L, 2, &action.len);
    payload.ptr = luaL_checklstring(L, 3, &payload.len);
    if (lua_type(L, 4) != LUA_TNUMBER)
        luaL_error(L, "%s: timestamp must be a number (got %s)", fn, luaL_typename(L, 4));
    if (!ecdn_to_integer(L, 4, &ts) || ts < 0 || ts > ECDN_MAX_TIMESTAMP)
        luaL_error(L, "%s: timestamp must be an integer in [0, 253402300799]", fn);
    if (u->closed) luaL_error(L, "%s: the signer is closed", fn);
    u->in_use++;                 /* before the first allocation */
    *r = take_result(L, sc, own);
    if (u->closed) {             /* a finalizer run by that allocation closed it */
        release_result(sc, *r, *own);
        signer_release(u);
        luaL_error(L, "%s: the signer is closed", fn);
    }
    rc = ecdn_tc3_prepared_sign(u->p, action, payload, ts, omit_debug, *r, &bad);
    if (rc != ECDN_OK) {
        release_result(sc, *r, *own);
        signer_release(u);
        if (rc == ECDN_EFIELD) luaL_error(L, "%s: %s is empty or contains CR, LF or NUL", fn, bad);
        sign_error(L, fn, rc, bad);
    }
    *q = *ecdn_tc3_prepared_fields(u->p);
    q->action = action;
    q->omit_debug = omit_debug;
    return u;
}

/* signer:sign(action, payload, timestamp [, debug]) -> as sign_tc3 (the
 * debug strings only when debug is true). */
static int l_signer_sign(lua_State *L)
{
    static const value_slots vs = { 0, 2, 0, 0 };
    tc3_scratch *sc = (tc3_scratch *)lua_touserdata(L, lua_upvalueindex(UP_SCRATCH));
    tc3_signer_ud *u;
    ecdn_tc3_request q;
    ecdn_tc3_result *r;
    int own, debug = 0;
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TBOOLEAN);
        debug = lua_toboolean(L, 5);
    }
    lua_settop(L, 4);
    u = signer_sign(L, "tc3_signer:sign", !debug, sc, &r, &own, &q);
    /* (A raise in here, and an out-of-memory error in take_result or in
     * :authorization's push, leave the signer held: a close() then marks
     * it closed, and __gc wipes the key.) */
    push_tc3_result(L, &q, r, &vs);
    release_result(sc, r, own);
    signer_release(u);
    return 1;
}

/* signer:authorization(action, payload, timestamp) -> the Authorization
 * header's value alone (what the SDKs' sign3 returns). */
static int l_signer_authorization(lua_State *L)
{
    tc3_scratch *sc = (tc3_scratch *)lua_touserdata(L, lua_upvalueindex(UP_SCRATCH));
    tc3_signer_ud *u;
    ecdn_tc3_request q;
    ecdn_tc3_result *r;
    int own;
    lua_settop(L, 4);
    u = signer_sign(L, "tc3_signer:authorization", 1, sc, &r, &own, &q);
    lua_pushlstring(L, r->authorization.data ? r->authorization.data : "", r->authorization.len);
    release_result(sc, r, own);
    signer_release(u);
    return 1;
}

/* signer:close() -> true (also __close): wipes the key, now or, when a call
 * on this signer is building its answer (close() from a finalizer), as that
 * call ends. Idempotent. */
static int l_signer_close(lua_State *L)
{
    tc3_signer_ud *u = (tc3_signer_ud *)luaL_checkudata(L, 1, SIGNER_MT);
    u->closed = 1;
    if (u->in_use == 0) signer_free(u);
    lua_pushboolean(L, 1);
    return 1;
}

/* __gc: no call can be running (its self, on the call's stack, keeps the
 * signer alive), unless a finalizer rewrites that stack slot through the
 * debug library, which voids the C API's guarantees anyway. */
static int l_signer_gc(lua_State *L)
{
    tc3_signer_ud *u = (tc3_signer_ud *)luaL_checkudata(L, 1, SIGNER_MT);
    u->closed = 1;
    signer_free(u);
    return 0;
}

/* core.sign_cache_stats() -> {hits, misses, evictions, replaced, entries,
 * capacity, prepared}: the derived-key cache of the calling thread's signer
 * (core.sign_tc3's), and the prepared signers alive in the process (made by
 * core.tc3_signer and by each ecdn.client, which keeps its key in its own).
 * For tests and benchmarks. */
static int l_sign_cache_stats(lua_State *L)
{
    ecdn_tc3_cache_stats st;
    ecdn_tc3_signer_stats(ecdn_tc3_thread_signer(), &st);
    lua_createtable(L, 0, 7);
    lua_pushnumber(L, (lua_Number)st.hits);
    lua_setfield(L, -2, "hits");
    lua_pushnumber(L, (lua_Number)st.misses);
    lua_setfield(L, -2, "misses");
    lua_pushnumber(L, (lua_Number)st.evictions);
    lua_setfield(L, -2, "evictions");
    lua_pushnumber(L, (lua_Number)st.replaced);
    lua_setfield(L, -2, "replaced");
    lua_pushnumber(L, (lua_Number)st.entries);
    lua_setfield(L, -2, "entries");
    lua_pushnumber(L, (lua_Number)st.capacity);
    lua_setfield(L, -2, "capacity");
    lua_pushnumber(L, (lua_Number)ecdn_tc3_prepared_live());
    lua_setfield(L, -2, "prepared");
    return 1;
}

/* core.sign_cache_forget(secret_key): wipes what was derived from that key. */
static int l_sign_cache_forget(lua_State *L)
{
    ecdn_str key;
    key.ptr = luaL_checklstring(L, 1, &key.len);
    ecdn_tc3_forget_key(key);
    return 0;
}

/* core.sign_cache_clear(): wipes every derived key the thread's signer holds. */
static int l_sign_cache_clear(lua_State *L)
{
    (void)L;
    ecdn_tc3_signer_clear(ecdn_tc3_thread_signer());
    return 0;
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

/* Pushes fn as a closure over the TC3_NUPVALUES values at base... */
static void push_tc3_closure(lua_State *L, int base, lua_CFunction fn)
{
    int i;
    for (i = 0; i < TC3_NUPVALUES; i++) lua_pushvalue(L, base + i);
    lua_pushcclosure(L, fn, TC3_NUPVALUES);
}

void ecdn_open_sign(lua_State *L)
{
    ecdn_gc_type(L, TC3_RESULT_MT, tc3_result_gc);
    ecdn_gc_type(L, V1_RESULT_MT, v1_result_gc);

    {
        int i, base;
        tc3_scratch *sc;
        luaL_checkstack(L, 2 * TC3_NUPVALUES + 8, "ecdn.core");
        base = lua_gettop(L) + 1; /* the module table is at base - 1 */
        sc = (tc3_scratch *)lua_newuserdata(L, sizeof *sc);
        ecdn_tc3_result_init(&sc->r);
        sc->busy = 0;
        lua_newtable(L);
        lua_pushcfunction(L, tc3_scratch_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        for (i = S_ID; i <= S_NFIELDS; i++) lua_pushstring(L, TC3_FIELDS[i]);
        for (i = 0; i < R_N; i++) lua_pushstring(L, TC3_RESULT_KEYS[i]);
        for (i = 0; i < ECDN_TC3_MAX_HEADERS; i++) lua_pushstring(L, ecdn_tc3_header_names[i]);
        /* sign_tc3, tc3_signer and the signer's methods share these upvalues. */
        push_tc3_closure(L, base, l_sign_tc3);
        lua_setfield(L, base - 1, "sign_tc3");
        push_tc3_closure(L, base, l_tc3_signer);
        lua_setfield(L, base - 1, "tc3_signer");
        luaL_newmetatable(L, SIGNER_MT);
        lua_createtable(L, 0, 3);
        push_tc3_closure(L, base, l_signer_sign);
        lua_setfield(L, -2, "sign");
        push_tc3_closure(L, base, l_signer_authorization);
        lua_setfield(L, -2, "authorization");
        lua_pushcfunction(L, l_signer_close);
        lua_setfield(L, -2, "close");
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_signer_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_signer_close);
        lua_setfield(L, -2, "__close");
        lua_settop(L, base - 1);
    }
    lua_pushcfunction(L, l_sign_cache_stats);
    lua_setfield(L, -2, "sign_cache_stats");
    lua_pushcfunction(L, l_sign_cache_clear);
    lua_setfield(L, -2, "sign_cache_clear");
    lua_pushcfunction(L, l_sign_cache_forget);
    lua_setfield(L, -2, "sign_cache_forget");
    lua_pushcfunction(L, l_sign_v1);
    lua_setfield(L, -2, "sign_v1");
}
