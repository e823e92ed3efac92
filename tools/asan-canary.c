/* A module that leaks on purpose: tools/asan-run.sh loads it first to prove
 * that its sanitizer set-up reports leaks made in a dlopen()ed module. */
#include <lua.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

static int leak(lua_State *L)
{
    char *p = malloc(64);
    if (p) memset(p, 1, 64);
    sink = p;
    sink = NULL;
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_canary(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, leak);
    lua_setfield(L, -2, "leak");
    return 1;
}
