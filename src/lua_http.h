/* The libcurl transport for Lua: core.http(opts) -> an "ecdn.http" userdata
 * whose request{method, url, headers, body} answers a raw response table or
 * nil and a network-failure table. ecdn.client pushes its answers with the
 * same functions, so every transport hands the decoder one shape. */
#ifndef ECDN_LUA_HTTP_H
#define ECDN_LUA_HTTP_H

#include "compat.h"
#include "http.h"

/* Reads timeout, connect_timeout, verify, cafile, proxy from the table at t
 * into cfg; string fields borrow from values left on the stack (pops none).
 * fn names the caller in errors. */
void ecdn_http_config_from_lua(lua_State *L, int t, const char *fn, ecdn_http_config *cfg);

/* rc 0: pushes {status, headers = {lower-case name = value}, body, attempts};
 * else pushes nil and {kind = "network", detail, message, sent, retryable,
 * tls, attempts[, status]}. Returns the number of values pushed. */
int ecdn_push_http_outcome(lua_State *L, int rc, const ecdn_http_result *r);

/* Sends the request table at idx {method, url, headers, body, resend} over
 * *hp (read just before sending: reading the table can run Lua code that
 * closes the owner, which sets it to NULL, and then this raises) and pushes
 * its outcome as ecdn_push_http_outcome does. */
int ecdn_lua_http_request(lua_State *L, ecdn_http *const *hp, int idx, const char *fn);

/* Adds http() and interrupt helpers to the table on top of the stack. */
void ecdn_open_http(lua_State *L);

#endif
