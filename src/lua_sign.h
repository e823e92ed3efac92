#ifndef ECDN_LUA_SIGN_H
#define ECDN_LUA_SIGN_H

#include "compat.h"
#include "sign.h"

/* Adds sign_tc3 and sign_v1 to the table at the top of the stack. */
void ecdn_open_sign(lua_State *L);
/* Fills q from the sign_tc3-style table at t (values stay pushed; returns how many). */
int ecdn_tc3_from_lua(lua_State *L, int t, const char *fn, ecdn_tc3_request *q);

#endif
