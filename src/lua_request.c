#include "lua_request.h"
#include "lua_util.h"
#include "purge.h"

#include <stdint.h>
#include <string.h>

#define BODY_MT "ecdn.body_scratch"

int ecdn_lua_list_body(lua_State *L, int idx, const char *field, const char *tail, ecdn_buf *out,
                       const char *fn)
{
    ecdn_str *items;
    size_t n, k, i, index = 0, at = 0;
    int problem, type;

    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    luaL_checkstack(L, 8, fn);
    n = (size_t)lua_rawlen(L, idx);
    /* The first non-string ends the list before anything is allocated: the
     * raw length of a table with holes can be far larger than its contents. */
    for (k = 0; k < n; k++) {
        lua_rawgeti(L, idx, (lua_Integer)k + 1);
        type = lua_type(L, -1);
        lua_pop(L, 1);
        if (type != LUA_TSTRING) break;
    }
    if (k > SIZE_MAX / sizeof *items - 1) return luaL_error(L, "%s: too many items", fn);
    items = (ecdn_str *)lua_newuserdata(L, (k + 1) * sizeof *items);
    /* Items stay referenced by the table at idx for the whole call. */
    for (i = 0; i < k; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        items[i].ptr = lua_tolstring(L, -1, &items[i].len);
        lua_pop(L, 1);
    }
    /* Problems are reported in list order: a bad item before the non-string wins. */
    problem = (k == 0 && n > 0) ? ECDN_URL_OK : ecdn_list_body(out, field, items, k, tail, &index, &at);
    lua_pop(L, 1); /* items */
    if (problem == ECDN_URL_NOMEM) return luaL_error(L, "%s: out of memory", fn);
    if (problem == ECDN_URL_OK && k < n) {
        problem = ECDN_URL_NOT_STRING;
        index = k;
        at = 0;
    }
    if (problem == ECDN_URL_OK) return 0;
    ecdn_buf_reset(out);
    lua_pushnil(L);
    lua_createtable(L, 0, 5);
    lua_pushliteral(L, "client");
    lua_setfield(L, -2, "kind");
    if (problem != ECDN_URL_EMPTY_LIST) {
        lua_pushinteger(L, (lua_Integer)index + 1);
        lua_setfield(L, -2, "index");
        lua_pushinteger(L, (lua_Integer)at + 1);
        lua_setfield(L, -2, "at");
    }
    lua_pushstring(L, ecdn_url_problem_name(problem));
    lua_setfield(L, -2, "problem");
    lua_pushstring(L, ecdn_url_problem_text(problem));
    lua_setfield(L, -2, "reason");
    return 2;
}

const char *ecdn_flush_tail(const char *flush_type)
{
    if (strcmp(flush_type, "flush") == 0) return ",\"FlushType\":\"flush\"";
    if (strcmp(flush_type, "delete") == 0) return ",\"FlushType\":\"delete\"";
    return NULL;
}

static int body_gc(lua_State *L)
{
    ecdn_buf_free((ecdn_buf *)luaL_checkudata(L, 1, BODY_MT));
    return 0;
}

static int build(lua_State *L, const char *field, const char *tail, const char *fn)
{
    ecdn_buf *b = (ecdn_buf *)lua_newuserdata(L, sizeof *b);
    int n;
    ecdn_buf_init(b);
    luaL_getmetatable(L, BODY_MT);
    lua_setmetatable(L, -2);
    n = ecdn_lua_list_body(L, 1, field, tail, b, fn);
    if (n) return n;
    lua_pushlstring(L, b->data, b->len);
    ecdn_buf_free(b);
    return 1;
}

/* core.purge_body(urls) -> '{"Urls":[...]}' | nil, local error table */
static int l_purge_body(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return build(L, "Urls", NULL, "purge_body");
}

/* core.paths_body(paths, "flush"|"delete") -> '{"Paths":[...],"FlushType":"..."}' | nil, err */
static int l_paths_body(lua_State *L)
{
    const char *tail;
    luaL_checktype(L, 1, LUA_TTABLE);
    tail = ecdn_flush_tail(luaL_checkstring(L, 2));
    if (tail == NULL) return luaL_error(L, "paths_body: flush_type must be \"flush\" or \"delete\"");
    lua_settop(L, 1);
    return build(L, "Paths", tail, "paths_body");
}

/* core.check_url(s) -> nil when s may be purged, else {problem, reason, at}
 * (the same checks as purge_body, one URL at a time). */
static int l_check_url(lua_State *L)
{
    size_t len, at = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    int problem = ecdn_url_check(s, len, &at);
    if (problem == ECDN_URL_OK) return 0;
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "client");
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, ecdn_url_problem_name(problem));
    lua_setfield(L, -2, "problem");
    lua_pushstring(L, ecdn_url_problem_text(problem));
    lua_setfield(L, -2, "reason");
    lua_pushinteger(L, (lua_Integer)at + 1);
    lua_setfield(L, -2, "at");
    return 1;
}

void ecdn_open_request(lua_State *L)
{
    lua_pushcfunction(L, l_check_url);
    lua_setfield(L, -2, "check_url");
    ecdn_gc_type(L, BODY_MT, body_gc);
    lua_pushcfunction(L, l_purge_body);
    lua_setfield(L, -2, "purge_body");
    lua_pushcfunction(L, l_paths_body);
    lua_setfield(L, -2, "paths_body");
}
