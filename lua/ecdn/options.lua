--- The options ecdn.client and resty.ecdn share, and their checks, in one
-- place: names and Lua types, the service, the language, the endpoint. A
-- wrong name, type or value is a programming error: it raises at the
-- caller's line ("ecdn.client: field 'language' must be ...").
local endpoint = require "ecdn.endpoint"
local services = require "ecdn.services"

local M = {}

M.LANGUAGES = { ["en-US"] = true, ["zh-CN"] = true }
M.FLUSH_TYPES = { flush = true, delete = true }
M.AREAS = { mainland = true, overseas = true, global = true }

-- name = expected Lua type, for both clients.
M.COMMON = {
  secret_id = "string", secret_key = "string", token = "string",
  service = "string", endpoint = "string", version = "string",
  region = "string", language = "string",
  timeout = "number", connect_timeout = "number",
  verify = "boolean", cafile = "string", proxy = "string",
  rate = "number",    -- requests per second from this client (an exact sliding window; 0 = no limit)
  clock = "function", -- for tests: returns the unix time to sign with
}

--- with(extra) -> COMMON plus a client's own options.
function M.with(extra)
  local t = {}
  for k, v in pairs(M.COMMON) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

--- cdn_extras(opts, cdn_ok, allowed) -> nil (neither asked) | tail, fields |
-- false, message: CDN's Area and UrlEncode of a purge, checked. tail: the
-- raw JSON members for the end of the body (,"Area":"mainland"), fields the
-- same as a table; cdn_ok: the client may send them (allowed names the
-- service values that do, for the message).
function M.cdn_extras(opts, cdn_ok, allowed)
  if opts == nil or (opts.area == nil and opts.url_encode == nil) then return nil end
  if not cdn_ok then return false, "area and url_encode are CDN options (service = " .. allowed .. ")" end
  local parts, fields = {}, {}
  if opts.area ~= nil then
    if not M.AREAS[opts.area] then return false, "area must be \"mainland\", \"overseas\" or \"global\"" end
    parts[#parts + 1] = ',"Area":"' .. opts.area .. '"'
    fields.Area = opts.area
  end
  if opts.url_encode ~= nil then
    if type(opts.url_encode) ~= "boolean" then return false, "url_encode must be a boolean" end
    parts[#parts + 1] = ',"UrlEncode":' .. tostring(opts.url_encode)
    fields.UrlEncode = opts.url_encode
  end
  return table.concat(parts), fields
end

--- check(opts, types, who, level) -> opts (a table), or raises naming the
-- option; then the common values: language, and the service (returns the
-- service's facts table) and the endpoint (url, host). `auto_ok`: the
-- service may be "auto" (started as "ecdn").
function M.check(opts, types, who, level, auto_ok)
  level = level + 1
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error(who .. ": options must be a table (got " .. type(opts) .. ")", level) end
  for k, v in pairs(opts) do
    local want = types[k]
    if not want then error(who .. ": unknown option '" .. tostring(k) .. "'", level) end
    if type(v) ~= want then
      error(who .. ": field '" .. k .. "' must be a " .. want .. " (got " .. type(v) .. ")", level)
    end
  end
  local name = opts.service or "ecdn"
  if auto_ok and name == "auto" then name = "ecdn" end
  local service = services[name]
  if type(service) ~= "table" or not service.host then
    error(who .. ": field 'service' must be \"ecdn\"" .. (auto_ok and ", \"cdn\" or \"auto\"" or " or \"cdn\""),
      level)
  end
  if opts.language and not M.LANGUAGES[opts.language] then
    error(who .. ": field 'language' must be \"en-US\" or \"zh-CN\"", level)
  end
  local rate = opts.rate
  if rate ~= nil and (rate < 0 or rate ~= math.floor(rate)) then
    error(who .. ": field 'rate' must be a whole number >= 0", level)
  end
  local url, host = endpoint.parse(opts.endpoint or ("https://" .. service.host))
  if not url then error(who .. ": field 'endpoint' " .. host, level) end
  return opts, name, url, host
end

return M
