/* Test-only: fork(), _exit() and waitpid() for Lua VMs without lua-posix
 * (Debian ships none for Lua 5.4). Built on demand by spec/support/fork.lua;
 * never part of the product. */
#define _GNU_SOURCE /* _Fork */
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>

/* What fork() and _Fork() return: pid | nil, why. */
static int push_fork(lua_State *L, pid_t pid)
{
    if (pid < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

static int l_fork(lua_State *L) { return push_fork(L, fork()); }

/* _Fork(): a fork that runs no pthread_atfork handlers (glibc 2.34+), to
 * show that fork detection does not rest on them. nil where missing. */
static int l_raw_fork(lua_State *L)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return push_fork(L, _Fork());
#else
    lua_pushnil(L);
    lua_pushstring(L, "no _Fork here");
    return 2;
#endif
}

static int l_exit(lua_State *L)
{
    _exit((int)luaL_optinteger(L, 1, 0));
    return 0;
}

/* waitpid(pid) -> pid, "exited"|"killed", code */
static int l_wait(lua_State *L)
{
    int st = 0;
    pid_t pid;
    do pid = waitpid((pid_t)luaL_checkinteger(L, 1), &st, 0); while (pid < 0 && errno == EINTR);
    if (pid < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)pid);
    if (WIFEXITED(st)) {
        lua_pushstring(L, "exited");
        lua_pushinteger(L, WEXITSTATUS(st));
    } else {
        lua_pushstring(L, "killed");
        lua_pushinteger(L, WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    }
    return 3;
}

int luaopen_fork_shim(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_fork);
    lua_setfield(L, -2, "fork");
    lua_pushcfunction(L, l_raw_fork);
    lua_setfield(L, -2, "raw_fork");
    lua_pushcfunction(L, l_exit);
    lua_setfield(L, -2, "_exit");
    lua_pushcfunction(L, l_wait);
    lua_setfield(L, -2, "wait");
    return 1;
}
