/* ecdn.core: the C half of lua-ecdn (signers now; the HTTP client joins here). */
#include "compat.h"
#include "lua_sign.h"
#include "lua_client.h"

ECDN_EXPORT int luaopen_ecdn_core(lua_State *L)
{
    lua_newtable(L);
    ecdn_open_sign(L);
    ecdn_open_client(L);
    lua_pushliteral(L, "0.1.0");
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
