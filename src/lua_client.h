/* core.new and the ecdn.client userdata (metatable "ecdn.client"). */
#ifndef ECDN_LUA_CLIENT_H
#define ECDN_LUA_CLIENT_H

#include "compat.h"

/* Adds new() and client_methods to the table on top of the stack. */
void ecdn_open_client(lua_State *L);

#endif
