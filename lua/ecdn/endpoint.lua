--- Endpoint parsing, shared by ecdn.client and the command line so both
-- accept and refuse the same strings.
--   endpoint.parse("https://ecdn.tencentcloudapi.com") ->
--     "https://ecdn.tencentcloudapi.com/", "ecdn.tencentcloudapi.com"
--   endpoint.parse("http://h:80:80") -> nil, "has a bad port"
local M = {}

local DEFAULT_PORT = { http = "80", https = "443" }

local function valid_hostname(h)
  if #h > 253 or not h:find("^[%w%-%.]+$") or h:find("%.%.") or h:find("^[%.%-]") then return false end
  for label in h:gmatch("[^%.]+") do
    if #label > 63 or label:find("^%-") or label:find("%-$") then return false end
  end
  return true
end

--- Returns the URL to send to (with a trailing "/") and the host to sign
-- (lower case, with the port only when it is not the scheme's default), or
-- nil and what is wrong. The endpoint itself is never quoted: it may hold a
-- password.
function M.parse(s)
  if type(s) ~= "string" then return nil, "must be a string" end
  local scheme, rest = s:match("^(%a+)://(.*)$")
  scheme = scheme and scheme:lower()
  if not DEFAULT_PORT[scheme] then return nil, "must start with http:// or https://" end
  local authority, tail = rest:match("^([^/?#]*)(.*)$")
  if tail ~= "" and tail ~= "/" then return nil, "must not have a path, query or fragment (https://host[:port])" end
  if authority:find("@", 1, true) then return nil, "must not contain user information (user@host)" end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^(%[[%x:%.]+%])(.*)$")
  else
    host, port = authority:match("^([^:]*)(.*)$")
    if host and not valid_hostname(host) then host = nil end
  end
  if not host or host == "" then return nil, "has no valid host" end
  if port ~= "" then
    local digits = port:match("^:(%d+)$")
    local n = digits and #digits <= 5 and tonumber(digits)
    if not n or n < 1 or n > 65535 then return nil, "has a bad port (1-65535)" end
    port = ":" .. n
  end
  host = host:lower()
  local url = scheme .. "://" .. host .. port .. "/"
  -- curl sends Host without the scheme's default port; sign what it sends.
  if port == ":" .. DEFAULT_PORT[scheme] then port = "" end
  return url, host .. port
end

return M
