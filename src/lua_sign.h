#ifndef ECDN_LUA_SIGN_H
#define ECDN_LUA_SIGN_H

#include "compat.h"
#include "sign.h"

/* Adds sign_tc3, sign_v1, sign_cache_stats, sign_cache_clear and
 * sign_cache_forget to the table at the top of the stack. */
void ecdn_open_sign(lua_State *L);

#endif
