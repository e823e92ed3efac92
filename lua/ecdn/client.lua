--- ecdn.client: the Lua half of the client (options, credentials, results
-- and error tables). The C userdata from `ecdn.core.new` does the signing and
-- the HTTP; its raw methods return status and body, and the methods defined
-- here turn those into results or `nil, err` (see lua/ecdn/errors.lua).
local core = require "ecdn.core"
local errors = require "ecdn.errors"
local cjson = require("cjson").new() -- a private instance: our settings stay ours

local M = {}

local SERVICES = {
  ecdn = { version = "2019-10-12" },
  cdn = { version = "2018-06-06" },
}

local WILDCARD_CODE = {
  ecdn = "InvalidParameter.EcdnPurgeWildcardNotAllowed",
  cdn = "InvalidParameter.CdnPurgeWildcardNotAllowed",
}

local LANGUAGES = { ["en-US"] = true, ["zh-CN"] = true }

-- name = expected Lua type
local OPTIONS = {
  secret_id = "string", secret_key = "string", token = "string",
  service = "string", endpoint = "string", version = "string",
  region = "string", language = "string",
  timeout = "number", connect_timeout = "number",
  verify = "boolean", cafile = "string", proxy = "string",
  clock = "function", -- for tests: returns the unix time to sign with
}

-- Per-client Lua-side state (clock, service), keyed weakly by the userdata.
local state = setmetatable({}, { __mode = "k" })

local function credential_error(message)
  return errors.new { code = "ClientError.CredentialError", message = message, kind = "client",
                      retryable = false }
end

local function surrounding_space(s)
  return s:find("^%s") ~= nil or s:find("%s$") ~= nil
end

-- Explicit fields first, else the environment (both parts from one place).
local function credentials(opts, getenv)
  local id, key, token = opts.secret_id, opts.secret_key, opts.token
  if id == nil and key == nil then
    id, key = getenv("TENCENTCLOUD_SECRET_ID"), getenv("TENCENTCLOUD_SECRET_KEY")
    if token == nil then token = getenv("TENCENTCLOUD_SESSION_TOKEN") end
    if id == nil and key == nil then
      return nil, credential_error("no credentials: pass secret_id and secret_key, or set "
        .. "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY")
    end
  end
  if id == nil or id == "" then return nil, credential_error("SecretId is missing or empty") end
  if key == nil or key == "" then return nil, credential_error("SecretKey is missing or empty") end
  if token == "" then token = nil end
  -- Never echo the values: they are secrets.
  if surrounding_space(id) then return nil, credential_error("SecretId has leading or trailing whitespace") end
  if surrounding_space(key) then return nil, credential_error("SecretKey has leading or trailing whitespace") end
  if token and surrounding_space(token) then
    return nil, credential_error("session token has leading or trailing whitespace")
  end
  return id, key, token
end

-- "https://host[:port][/]" -> url with a trailing "/", host[:port]
local function parse_endpoint(endpoint)
  local scheme, host = endpoint:match("^(https?)://([%w%.%-%[%]:]+)/?$")
  if not scheme or host:find("^:") or host:find(":$") then
    error("ecdn.client: field 'endpoint' must look like https://host[:port]", 3)
  end
  host = host:lower() -- signed as the canonical form: lower case
  return scheme .. "://" .. host .. "/", host
end

--- ecdn.client(opts) -> client | nil, err. Bad option names or types raise.
function M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("ecdn.client: options must be a table (got " .. type(opts) .. ")", 2)
  end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error("ecdn.client: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then
      error("ecdn.client: field '" .. k .. "' must be a " .. want .. " (got " .. type(v) .. ")", 2)
    end
  end
  local service = opts.service or "ecdn"
  if not SERVICES[service] then error("ecdn.client: field 'service' must be \"ecdn\" or \"cdn\"", 2) end
  if opts.language and not LANGUAGES[opts.language] then
    error("ecdn.client: field 'language' must be \"en-US\" or \"zh-CN\"", 2)
  end
  local id, key, token = credentials(opts, os.getenv)
  if not id then return nil, key end
  local url, host = parse_endpoint(opts.endpoint or ("https://" .. service .. ".tencentcloudapi.com"))
  local c = core.new {
    secret_id = id, secret_key = key, token = token,
    service = service, host = host, endpoint = url,
    version = opts.version or SERVICES[service].version,
    region = opts.region, language = opts.language,
    timeout = opts.timeout, connect_timeout = opts.connect_timeout,
    verify = opts.verify, cafile = opts.cafile, proxy = opts.proxy,
  }
  state[c] = { clock = opts.clock, service = service }
  return c
end

local function now(self)
  local st = state[self]
  local clock = st and st.clock
  if not clock then return nil end -- C signs with time(NULL)
  local t = clock()
  if type(t) ~= "number" or t ~= t or t < 0 then error("ecdn.client: clock() must return unix seconds", 3) end
  return math.floor(t)
end

-- A short, single-line excerpt of a body for messages.
local function excerpt(body)
  local s = body:sub(1, 120):gsub("[%c]", " ")
  if #body > 120 then s = s .. "..." end
  return s
end

local function parse_error(status, message, request_id)
  return errors.new { code = "ClientError.ParseJsonError", message = message, kind = "http",
                      status = status, request_id = request_id, retryable = true }
end

--- Turns a raw answer (status, body or nil, kind, ...) into the decoded
-- Response table, or nil, err.
local function response(status, body, a, b)
  if status == nil then
    return nil, errors.new { code = "ClientError.NetworkError", message = b or "network failure",
                             detail = a, kind = "network", retryable = true }
  end
  local ok, doc = pcall(cjson.decode, body)
  local resp = ok and type(doc) == "table" and doc.Response
  if type(resp) ~= "table" then resp = nil end
  local request_id = resp and type(resp.RequestId) == "string" and resp.RequestId or nil
  if status ~= 200 then
    return nil, errors.new { code = "ClientError.HttpStatusCodeError", kind = "http", status = status,
                             message = "HTTP " .. status .. ": " .. excerpt(body), request_id = request_id,
                             retryable = errors.retryable_status(status) }
  end
  if not resp or not request_id then
    return nil, parse_error(status, "not an API response: " .. excerpt(body), request_id)
  end
  local e = resp.Error
  if e ~= nil then
    if type(e) ~= "table" or type(e.Code) ~= "string" then
      return nil, parse_error(status, "malformed Error in response: " .. excerpt(body), request_id)
    end
    return nil, errors.new { code = e.Code, message = type(e.Message) == "string" and e.Message or "",
                             request_id = request_id, kind = "api", status = status }
  end
  return resp
end

local function local_error(self, index, problem, reason, at)
  local st = state[self]
  local code = "ClientError.InvalidParameter"
  if problem == "wildcard" then code = WILDCARD_CODE[st and st.service or "ecdn"] end
  local message
  if index == nil then
    message = "urls: " .. reason
  elseif problem == "not_string" or problem == "scheme" then
    message = "URL #" .. index .. " " .. reason
  else
    message = "URL #" .. index .. " " .. reason .. " (at byte " .. at .. ")"
  end
  return errors.new { code = code, message = message, kind = "client", index = index,
                      problem = problem, retryable = false }
end

local methods = core.client_methods
-- Called as functions, not through self, so a non-client `self` gets the C
-- argument check ("ecdn.client expected") instead of an obscure nil call.
local raw_purge, raw_send, raw_info = methods._purge, methods._send, methods._info

--- client:purge(urls) -> { task_id, request_id } | nil, err
-- Sends all URLs in one PurgeUrlsCache request after local validation.
function methods:purge(urls)
  if type(urls) ~= "table" then
    error("purge: urls must be a table (got " .. type(urls) .. ")", 2)
  end
  local status, body, a, b, c, d = raw_purge(self, urls, now(self))
  if status == nil and body == "client" then return nil, local_error(self, a, b, c, d) end
  local resp, err = response(status, body, a, b)
  if not resp then return nil, err end
  if type(resp.TaskId) ~= "string" then
    return nil, parse_error(status, "response has no TaskId", resp.RequestId)
  end
  return { task_id = resp.TaskId, request_id = resp.RequestId }
end

--- client:call(action, params) -> decoded Response table | nil, err
-- Any action of the client's service and version; params are JSON-encoded
-- with lua-cjson (numbers keep 14 significant digits).
function methods:call(action, params)
  if type(action) ~= "string" or not action:find("^%u%w*$") then
    error("call: action must be an API name such as \"DescribePurgeQuota\"", 2)
  end
  if params == nil then params = {} end
  if type(params) ~= "table" then error("call: params must be a table (got " .. type(params) .. ")", 2) end
  local ok, body = pcall(cjson.encode, params)
  if not ok then error("call: params cannot be encoded as JSON: " .. tostring(body), 2) end
  return response(raw_send(self, action, body, now(self)))
end

--- client:info() -> { service, endpoint, host, version, region, language, closed } (no secrets)
function methods:info()
  return raw_info(self)
end

return M
