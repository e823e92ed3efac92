/* Stage 4's fast path for Lua: core.task_answer(body) and the result table
 * the task actions return (lua/ecdn/decode.lua's task()). */
#ifndef ECDN_LUA_ANSWER_H
#define ECDN_LUA_ANSWER_H

#include "compat.h"
#include "http.h"

/* When r is a 200 whose body is the common task answer (answer.h), pushes
 * {task_id, request_id, attempts} -- what decode.task makes of it -- and
 * returns 1; otherwise pushes nothing and returns 0. */
int ecdn_push_task_answer(lua_State *L, const ecdn_http_result *r);

void ecdn_open_answer(lua_State *L);

#endif
