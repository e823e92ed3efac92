#include "lua_util.h"

#include <math.h>
#include <stdio.h>

void ecdn_gc_type(lua_State *L, const char *name, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

int ecdn_field_error(lua_State *L, const char *fn, const char *field, const char *what)
{
    return luaL_error(L, "%s: field '%s' %s", fn, field, what);
}

int ecdn_to_integer(lua_State *L, int idx, long long *out)
{
    lua_Number d;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        *out = (long long)lua_tointeger(L, idx);
        return 1;
    }
#endif
    d = lua_tonumber(L, idx);
    /* 2^63 is exactly representable; anything not below it does not fit. */
    if (!(d == d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return 0;
    *out = (long long)d;
    return 1;
}

void ecdn_opt_string(lua_State *L, int t, const char *fn, const char *field, int required, ecdn_str *out)
{
    int type;
    luaL_checkstack(L, 2, "too many fields");
    lua_getfield(L, t, field);
    type = lua_type(L, -1);
    out->ptr = NULL;
    out->len = 0;
    if (type == LUA_TNIL) {
        if (required) ecdn_field_error(L, fn, field, "is missing");
        return;
    }
    if (type != LUA_TSTRING)
        luaL_error(L, "%s: field '%s' must be a string (got %s)", fn, field, lua_typename(L, type));
    out->ptr = lua_tolstring(L, -1, &out->len);
}

long long ecdn_opt_integer(lua_State *L, int t, const char *fn, const char *field, int required,
                           long long def, long long min, long long max)
{
    long long v = 0;
    int type;
    luaL_checkstack(L, 2, "too many fields");
    lua_getfield(L, t, field);
    type = lua_type(L, -1);
    if (type == LUA_TNIL) {
        if (required) ecdn_field_error(L, fn, field, "is missing");
        return def;
    }
    if (type != LUA_TNUMBER)
        luaL_error(L, "%s: field '%s' must be a number (got %s)", fn, field, lua_typename(L, type));
    if (!ecdn_to_integer(L, -1, &v) || v < min || v > max) {
        char what[96]; /* lua_pushfstring has no %lld */
        snprintf(what, sizeof what, "must be an integer in [%lld, %lld]", min, max);
        ecdn_field_error(L, fn, field, what);
    }
    return v;
}

int ecdn_opt_boolean(lua_State *L, int t, const char *fn, const char *field, int def)
{
    int type;
    luaL_checkstack(L, 2, "too many fields");
    lua_getfield(L, t, field);
    type = lua_type(L, -1);
    if (type == LUA_TNIL) return def;
    if (type != LUA_TBOOLEAN)
        luaL_error(L, "%s: field '%s' must be a boolean (got %s)", fn, field, lua_typename(L, type));
    return lua_toboolean(L, -1);
}
