#include "lua_answer.h"
#include "answer.h"

static void push_task(lua_State *L, ecdn_str task_id, ecdn_str request_id, int attempts)
{
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, task_id.ptr, task_id.len);
    lua_setfield(L, -2, "task_id");
    lua_pushlstring(L, request_id.ptr, request_id.len);
    lua_setfield(L, -2, "request_id");
    lua_pushinteger(L, (lua_Integer)attempts);
    lua_setfield(L, -2, "attempts");
}

int ecdn_push_task_answer(lua_State *L, const ecdn_http_result *r)
{
    ecdn_str task_id, request_id;
    if (r->status != 200 || !ecdn_answer_task(r->body.data, r->body.len, &task_id, &request_id)) return 0;
    luaL_checkstack(L, 4, "task answer");
    push_task(L, task_id, request_id, r->attempts);
    return 1;
}

/* core.task_answer(body) -> task_id, request_id | nil: the common answer of
 * the task actions, recognised without a JSON decoder (decode.task's fast
 * path; anything else is for the general decoder). */
static int l_task_answer(lua_State *L)
{
    size_t len;
    const char *body = luaL_checklstring(L, 1, &len);
    ecdn_str task_id, request_id;
    if (!ecdn_answer_task(body, len, &task_id, &request_id)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, task_id.ptr, task_id.len);
    lua_pushlstring(L, request_id.ptr, request_id.len);
    return 2;
}

void ecdn_open_answer(lua_State *L)
{
    lua_pushcfunction(L, l_task_answer);
    lua_setfield(L, -2, "task_answer");
    lua_pushinteger(L, ECDN_MAX_ID);
    lua_setfield(L, -2, "MAX_ID");
}
