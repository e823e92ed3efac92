/* The answer the task actions (PurgeUrlsCache, PurgePathCache, PushUrlsCache)
 * give almost every time, recognised without a JSON decoder: the fast path of
 * stage 4 (lua/ecdn/decode.lua keeps the general decoder). No Lua here
 * (fuzzable). */
#ifndef ECDN_ANSWER_H
#define ECDN_ANSWER_H

#include "buf.h"

/* The longest TaskId, RequestId or error code handed to the caller
 * (decode.MAX_ID takes it from here). */
#define ECDN_MAX_ID 128

/* 1 when body is exactly {"Response":{"TaskId":T,"RequestId":R}} (members in
 * either order, JSON whitespace allowed between tokens), T and R being 1 to
 * ECDN_MAX_ID bytes of printable ASCII other than '"' and '\\': strings the
 * general decoder would hand back unchanged. *task_id and *request_id then
 * point into body. 0 for anything else, which the general decoder handles. */
int ecdn_answer_task(const char *body, size_t len, ecdn_str *task_id, ecdn_str *request_id);

#endif
