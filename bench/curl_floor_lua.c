/* The curl floor as a Lua module (bench only, never installed), so that
 * bench/interleaved.lua can run it in the same process as client:purge, in
 * alternating batches: both then see the same machine at the same moment.
 *   local floor = require "curl_floor"
 *   local f = floor.new(url, request_text)  -- the text bench/purge.lua --request-out writes
 *   f:run(n) -> true | nil, message         -- n requests, as build/bench/curl_floor makes them
 *   f:close()
 *   floor.clocks() -> wall, cpu             -- CLOCK_MONOTONIC and this thread's CPU, seconds */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "floor_request.h"

#define FLOOR_MT "curl_floor"

typedef struct {
    CURL *c;
    floor_request r;
    floor_sink s;
} lua_floor;

static int l_new(lua_State *L)
{
    size_t len;
    const char *url = luaL_checkstring(L, 1);
    const char *text = luaL_checklstring(L, 2, &len);
    char err[128], *copy;
    lua_floor *f = (lua_floor *)lua_newuserdata(L, sizeof *f);
    memset(f, 0, sizeof *f);
    luaL_getmetatable(L, FLOOR_MT);
    lua_setmetatable(L, -2);
    copy = (char *)malloc(len + 1);
    if (copy == NULL) return luaL_error(L, "curl_floor: out of memory");
    memcpy(copy, text, len + 1);
    if (floor_request_parse(&f->r, copy, len, err, sizeof err) != 0) return luaL_error(L, "curl_floor: %s", err);
    f->c = curl_easy_init();
    if (f->c == NULL) return luaL_error(L, "curl_floor: curl_easy_init failed");
    floor_setup(f->c, url, &f->r, &f->s);
    return 1;
}

static lua_floor *check_open(lua_State *L)
{
    lua_floor *f = (lua_floor *)luaL_checkudata(L, 1, FLOOR_MT);
    if (f->c == NULL) luaL_error(L, "curl_floor: closed");
    return f;
}

static int l_run(lua_State *L)
{
    lua_floor *f = check_open(L);
    lua_Integer i, n = luaL_checkinteger(L, 2);
    long status = 0;
    CURLcode rc;
    for (i = 0; i < n; i++) {
        f->s.len = 0;
        if ((rc = curl_easy_perform(f->c)) != CURLE_OK) {
            lua_pushnil(L);
            lua_pushstring(L, curl_easy_strerror(rc));
            return 2;
        }
    }
    curl_easy_getinfo(f->c, CURLINFO_RESPONSE_CODE, &status);
    if (n > 0 && (status != 200 || f->s.len == 0)) {
        lua_pushnil(L);
        lua_pushfstring(L, "HTTP %d", (int)status);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_close(lua_State *L)
{
    lua_floor *f = (lua_floor *)luaL_checkudata(L, 1, FLOOR_MT);
    if (f->c) curl_easy_cleanup(f->c);
    f->c = NULL;
    floor_request_free(&f->r);
    return 0;
}

static double seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int l_clocks(lua_State *L)
{
    lua_pushnumber(L, seconds(CLOCK_MONOTONIC));
    lua_pushnumber(L, seconds(CLOCK_THREAD_CPUTIME_ID));
    return 2;
}

static const luaL_Reg methods[] = { { "run", l_run }, { "close", l_close }, { NULL, NULL } };
static const luaL_Reg functions[] = { { "new", l_new }, { "clocks", l_clocks }, { NULL, NULL } };

ECDN_EXPORT int luaopen_curl_floor(lua_State *L)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (luaL_newmetatable(L, FLOOR_MT)) {
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, functions);
    return 1;
}
