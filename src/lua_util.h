/* Reading option tables from Lua: each getter leaves the value on the stack,
 * so borrowed string pointers stay alive even if the table has an __index
 * metamethod. Programming errors raise an error naming the field. */
#ifndef ECDN_LUA_UTIL_H
#define ECDN_LUA_UTIL_H

#include "compat.h"
#include "buf.h"

/* Pushes t[field]; *out = {NULL,0} when nil and optional. Raises otherwise. */
void ecdn_opt_string(lua_State *L, int t, const char *fn, const char *field, int required, ecdn_str *out);
/* Pushes t[field]; integral number in [min, max]; def when nil and optional. */
long long ecdn_opt_integer(lua_State *L, int t, const char *fn, const char *field, int required,
                           long long def, long long min, long long max);
/* Pushes t[field]; def when nil. */
int ecdn_opt_boolean(lua_State *L, int t, const char *fn, const char *field, int def);
/* Registers the metatable `name` whose only job is __gc = gc: the userdata
 * that own C memory while a call runs (freed even when the call raises). */
void ecdn_gc_type(lua_State *L, const char *name, lua_CFunction gc);
/* Raises "<fn>: field '<field>' <what>"; never prints the value. */
int ecdn_field_error(lua_State *L, const char *fn, const char *field, const char *what);
/* Integral lua_Number or integer at idx -> *out; 0 if not integral or out of range. */
int ecdn_to_integer(lua_State *L, int idx, long long *out);

#endif
