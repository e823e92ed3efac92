/* Shims in the lua-cjson style (small, static, only what the core uses) so that one set of
 * sources builds for Lua 5.1 (plain, and LuaJIT/OpenResty), 5.2, 5.3 and 5.4. 5.2 and 5.3
 * need none; `static inline` keeps -Werror quiet in files that do not use them. */
#ifndef ECDN_COMPAT_H
#define ECDN_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#ifndef luaL_newlib /* plain Lua 5.1 */
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    int i;
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs(L, l, 0))
#endif

#if LUA_VERSION_NUM < 502 /* Lua 5.1 ABI: LuaJIT, OpenResty */
#define lua_rawlen(L, i) lua_objlen(L, i)
#endif

#define ECDN_EXPORT __attribute__((visibility("default")))

#endif
