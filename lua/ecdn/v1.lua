--- Signature v1 (HmacSHA256 / HmacSHA1) end to end, for ecdn.client{signature
-- = "v1"}: the parameters flattened as the service wants them ("Urls.0",
-- "Urls.1", "Filter.Name", ...), signed in C with the client's credentials
-- and sent as a form POST. The same local checks, results and errors as TC3.
local core = require "ecdn.core"
local request = require "ecdn.request"

local M = {}

local function scalar(v)
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "number" then
    if v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  return v
end

--- flatten(params) -> { ["Name.0"] = "...", ["Name.Key"] = "..." }: arrays
-- 0-based, nested tables joined with ".", booleans as "true"/"false".
function M.flatten(params, prefix, out)
  out = out or {}
  for k, v in pairs(params) do
    local name = prefix and (prefix .. "." .. (type(k) == "number" and (k - 1) or k)) or tostring(k)
    if type(v) == "table" then M.flatten(v, name, out) else out[name] = scalar(v) end
  end
  return out
end

local function send(c, st, action, params, ts, resend)
  return c:_send_v1(action, params, ts, math.random(1, 2147483647), st.signature_method, resend)
end

--- purge(c, st, action, field, items, ts, extras, flush_type) -> raw | nil, failure
-- (extras: the CDN Area/UrlEncode of the call, a function giving its fields).
function M.purge(c, st, action, field, items, ts, extras, flush_type)
  -- The same local checks (and refusals) as the TC3 body.
  local ok, problem
  if field == "Urls" then ok, problem = request.purge_urls(items)
  else ok, problem = request.purge_paths(items, flush_type) end
  if not ok then return nil, problem end
  local params = {}
  for i, v in ipairs(items) do params[field .. "." .. (i - 1)] = v end
  if flush_type then params.FlushType = flush_type end
  local _, fields = (extras or function() end)()
  for k, v in pairs(fields or {}) do params[k] = scalar(v) end
  return send(c, st, action, params, ts, false)
end

--- call(c, st, action, params, ts, resend) -> raw | nil, failure
function M.call(c, st, action, params, ts, resend)
  return send(c, st, action, M.flatten(params), ts, resend)
end

M.core = core
return M
