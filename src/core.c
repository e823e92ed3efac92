/* ecdn.core: the C half of lua-ecdn: request building, signing, the libcurl
 * transport and the ecdn.client userdata. */
#include "compat.h"
#include "http.h"
#include "lua_answer.h"
#include "lua_client.h"
#include "lua_http.h"
#include "lua_request.h"
#include "lua_sign.h"
#include "version.h"

ECDN_EXPORT int luaopen_ecdn_core(lua_State *L)
{
    /* Once, at load (libcurl's own reference count makes reloads harmless). */
    if (ecdn_http_global_init() != 0) return luaL_error(L, "ecdn.core: curl_global_init failed");
    lua_newtable(L);
    ecdn_open_sign(L);
    ecdn_open_request(L);
    ecdn_open_http(L);
    ecdn_open_client(L);
    ecdn_open_answer(L);
    lua_pushliteral(L, ECDN_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, ECDN_USER_AGENT);
    lua_setfield(L, -2, "USER_AGENT");
    return 1;
}
