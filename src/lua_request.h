/* Request building for Lua: core.purge_body(urls) and core.paths_body(paths,
 * flush_type), the exact bodies ecdn.client sends, usable alone (a cosocket
 * transport signs and sends them itself). */
#ifndef ECDN_LUA_REQUEST_H
#define ECDN_LUA_REQUEST_H

#include "compat.h"
#include "buf.h"

/* Builds {"<field>":[items of the table at idx]<tail>} into out. Returns 0,
 * or pushes nil and a local-error table {kind = "client", index, problem,
 * reason, at} and returns 2. Raises only when memory runs out. */
int ecdn_lua_list_body(lua_State *L, int idx, const char *field, const char *tail, ecdn_buf *out,
                       const char *fn);

/* ,"FlushType":"flush" or "delete"; NULL for anything else. */
const char *ecdn_flush_tail(const char *flush_type);

void ecdn_open_request(lua_State *L);

#endif
