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

--- call(action, params) -> body, resend, params | nil, problem: the
-- arguments of client:call checked (an API name; a table, or nil for {})
-- and the body built. resend: a Describe* action changes nothing, so it may
-- be written again when a kept-alive connection dies under it.
function M.call(action, params)
  if type(action) ~= "string" or not action:find("^%u%w*$") then
    return nil, "action must be an API name such as \"DescribePurgeQuota\""
  end
  if params == nil then params = {} end
  if type(params) ~= "table" then return nil, "params must be a table (got " .. type(params) .. ")" end
  local ok, body = pcall(M.action, params)
  if not ok then return nil, (tostring(body):gsub("^[^:]*:%d+: ", "")) end
  return body, action:find("^Describe") ~= nil, params
end

return M
