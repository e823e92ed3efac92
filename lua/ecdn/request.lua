--- Stage 1 of the pipeline: request building. The exact JSON bodies, with
-- the local checks, for PurgeUrlsCache and PurgePathCache (C, the same code
-- ecdn.client runs) and for any other action from a Lua table.
--   local body, problem = request.purge_urls{ "https://www.example.com/a.jpg" }
-- `problem` is a plain table {kind = "client", index, problem, reason, at};
-- ecdn.decode.local_error turns it into an error table.
local core = require "ecdn.core"
local cjson = require("cjson").new() -- a private instance: our settings stay ours

local M = {}

M.purge_urls = core.purge_body   -- (urls) -> '{"Urls":[...]}' | nil, problem
M.purge_paths = core.paths_body  -- (paths, "flush"|"delete") -> '{"Paths":[...],"FlushType":...}' | nil, problem

--- Any action's body: params JSON-encoded with lua-cjson (numbers keep 14
-- significant digits). Raises for what cannot be encoded (a programming error).
function M.action(params)
  local ok, body = pcall(cjson.encode, params)
  if not ok then error("params cannot be encoded as JSON: " .. tostring(body), 2) end
  if body == "[]" then body = "{}" end -- an empty table is an empty object here
  return body
end

return M
