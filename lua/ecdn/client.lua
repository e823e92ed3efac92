--- ecdn.client: the public face of the client. Every public method lives
-- here; the C userdata from `ecdn.core.new` runs the pipeline (build, sign,
-- send) for each call and this layer checks arguments, decodes the answer
-- (ecdn.decode) and keeps the per-client Lua state. Expected failures come
-- back as `nil, err`; programming errors raise at the caller's line.
local bulk = require "ecdn.bulk"
local core = require "ecdn.core"
local credentials = require "ecdn.credentials"
local decode = require "ecdn.decode"
local endpoint = require "ecdn.endpoint"
local limiter = require "ecdn.limiter"
local request = require "ecdn.request"
local services = require "ecdn.services"

local M = {}

local LANGUAGES = { ["en-US"] = true, ["zh-CN"] = true }
local FLUSH_TYPES = { flush = true, delete = true }

-- name = expected Lua type
local OPTIONS = {
  secret_id = "string", secret_key = "string", token = "string",
  service = "string", endpoint = "string", version = "string",
  region = "string", language = "string",
  timeout = "number", connect_timeout = "number",
  verify = "boolean", cafile = "string", proxy = "string",
  rate = "number",      -- requests per second from this client (default 20; 0 = no limit)
  limiter = "table",    -- a shared ecdn.limiter (or anything with take/penalize/acquire)
  clock = "function", -- for tests: returns the unix time to sign with
}

-- The limiter's window: the service counts arrivals, which jitter against
-- our sends, so a window a little longer than its second keeps a burst at a
-- window's edge from arriving as rate + 1 inside one second.
local LIMIT_WINDOW = 1.05

-- Stands in for a limiter when the client has none (rate = 0).
local UNLIMITED = { take = function() return 0 end, penalize = function() end, acquire = function() end }

-- Per-client Lua-side state (clock, service, credential source), keyed
-- weakly by the userdata.
local state = setmetatable({}, { __mode = "k" })

local function fail(fn, message, level)
  error("ecdn.client" .. fn .. ": " .. message, level + 1)
end

local function now(st)
  local clock = st and st.clock
  if not clock then return nil end -- C signs with time(NULL)
  local t = clock()
  if type(t) ~= "number" or t ~= t or t < 0 then fail("", "clock() must return unix seconds", 4) end
  return math.floor(t)
end

--- ecdn.client(opts) -> client | nil, err. Bad option names or types raise.
function M.new(opts)
  -- libcurl would block the nginx worker: in a request or timer, resty.ecdn.
  local ngx = rawget(_G, "ngx")
  local phase = type(ngx) == "table" and type(ngx.get_phase) == "function" and ngx.get_phase()
  if phase and phase ~= "init" and phase ~= "init_worker" and phase ~= "exit_worker" then
    fail("", "blocks the nginx worker (phase '" .. phase .. "'): inside nginx use resty.ecdn", 2)
  end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then fail("", "options must be a table (got " .. type(opts) .. ")", 2) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then fail("", "unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then
      fail("", "field '" .. k .. "' must be a " .. want .. " (got " .. type(v) .. ")", 2)
    end
  end
  local service = opts.service or "ecdn"
  if not services[service] or type(services[service]) ~= "table" then
    fail("", "field 'service' must be \"ecdn\" or \"cdn\"", 2)
  end
  if opts.language and not LANGUAGES[opts.language] then
    fail("", "field 'language' must be \"en-US\" or \"zh-CN\"", 2)
  end
  local url, host = endpoint.parse(opts.endpoint or ("https://" .. services[service].host))
  if not url then fail("", "field 'endpoint' " .. host, 2) end
  local cred, err = credentials.resolve(opts, os.getenv)
  if not cred then return nil, err end
  local ok, c = pcall(core.new, {
    secret_id = cred.secret_id, secret_key = cred.secret_key, token = cred.token,
    service = service, host = host, url = url,
    version = opts.version or services[service].version,
    region = opts.region, language = opts.language,
    timeout = opts.timeout, connect_timeout = opts.connect_timeout,
    verify = opts.verify, cafile = opts.cafile, proxy = opts.proxy,
  })
  if not ok then error(c, 2) end
  local rate = opts.rate or services.RATE_PER_SECOND
  if rate < 0 or rate ~= math.floor(rate) then fail("", "field 'rate' must be a whole number >= 0", 2) end
  local st = { clock = opts.clock, service = service, credential_source = cred.source,
               limiter = opts.limiter
                 or (rate > 0 and limiter.new { rate = rate, window = LIMIT_WINDOW, clock = core.now })
                 or UNLIMITED,
               rate = rate, now = core.now, sleep = core.sleep }
  st.timestamp = function() return now(st) end
  -- purge_all's own `rate` adds a job limit on top of the client's.
  st.limiter_for = function(job_rate)
    if not job_rate or job_rate == rate then return st.limiter end
    local job = limiter.new { rate = job_rate, window = LIMIT_WINDOW, clock = core.now }
    return { take = function() local w = job:take() if w > 0 then return w end return st.limiter:take() end,
             penalize = function(_, secs) st.limiter:penalize(secs) end }
  end
  state[c] = st
  return c
end

local function check_self(self, fn)
  if getmetatable(self) ~= "ecdn.client" then
    fail(":" .. fn, "call it as client:" .. fn .. "(...) on an ecdn.client", 3)
  end
  return state[self]
end

-- C raises only for programming errors (a closed client); they point at
-- the caller of the public method.
local function checked(ok, a, b)
  if not ok then error(a, 3) end
  return a, b
end

-- The client's limiter before each request; the service's own rate refusal
-- (other clients on the account) slows every user of the limiter down.
local function limited(st, res, err)
  if err and err.kind == "api" and err.code:find("^RequestLimitExceeded") then st.limiter:penalize(1) end
  return res, err
end

local methods = core.client_methods
local raw_purge, raw_purge_paths, raw_send = methods._purge, methods._purge_paths, methods._send
local raw_info, raw_close, raw_set_credentials = methods._info, methods._close, methods._set_credentials

--- client:purge(urls) -> { task_id, request_id, attempts } | nil, err
-- Sends all URLs in one PurgeUrlsCache request after local validation.
function methods:purge(urls)
  local st = check_self(self, "purge")
  if type(urls) ~= "table" then fail(":purge", "urls must be a table (got " .. type(urls) .. ")", 2) end
  st.limiter:acquire(core.sleep)
  local raw, err = checked(pcall(raw_purge, self, urls, now(st)))
  if raw == nil and err.kind == "client" then return nil, decode.local_error(err, st.service, "URL") end
  return limited(st, decode.task(raw, err))
end

--- client:purge_paths(paths, {flush_type = "flush"|"delete"}) -> as purge
function methods:purge_paths(paths, opts)
  local st = check_self(self, "purge_paths")
  if type(paths) ~= "table" then fail(":purge_paths", "paths must be a table (got " .. type(paths) .. ")", 2) end
  local flush_type = type(opts) == "table" and opts.flush_type or nil
  if not FLUSH_TYPES[flush_type] then
    fail(":purge_paths", "opts.flush_type must be \"flush\" or \"delete\"", 2)
  end
  st.limiter:acquire(core.sleep)
  local raw, err = checked(pcall(raw_purge_paths, self, paths, flush_type, now(st)))
  if raw == nil and err.kind == "client" then return nil, decode.local_error(err, st.service, "path") end
  return limited(st, decode.task(raw, err))
end

--- client:call(action, params) -> decoded Response table (plus `attempts`) | nil, err
-- Any action of the client's service and version. Describe* actions may be
-- written again when a kept-alive connection dies under them (they change
-- nothing); every other action is written at most once.
function methods:call(action, params)
  local st = check_self(self, "call")
  if type(action) ~= "string" or not action:find("^%u%w*$") then
    fail(":call", "action must be an API name such as \"DescribePurgeQuota\"", 2)
  end
  if params == nil then params = {} end
  if type(params) ~= "table" then fail(":call", "params must be a table (got " .. type(params) .. ")", 2) end
  local ok, body = pcall(request.action, params)
  if not ok then fail(":call", tostring(body):gsub("^[^:]*:%d+: ", ""), 2) end
  local resend = action:find("^Describe") ~= nil
  st.limiter:acquire(core.sleep)
  return limited(st, decode.outcome(checked(pcall(raw_send, self, action, body, now(st), resend))))
end

--- client:purge_all(urls, opts) -> report | nil, err
-- Any number of URLs: batches, concurrency under the rate limit, retries,
-- lookups of uncertain batches, exact accounting (see ecdn.bulk and the README).
function methods:purge_all(urls, opts)
  local st = check_self(self, "purge_all")
  if type(urls) ~= "table" then fail(":purge_all", "urls must be a table (got " .. type(urls) .. ")", 2) end
  local report, err = bulk.purge_all(self, st, urls, opts) -- not a tail call: errors name the caller's line
  return report, err
end

--- client:wait(task_ids, {timeout, interval}) -> { [task_id] = "done"|"fail"|"process"|"unknown" }
function methods:wait(task_ids, opts)
  local st = check_self(self, "wait")
  if type(task_ids) ~= "table" then fail(":wait", "task_ids must be a table", 2) end
  if opts ~= nil and type(opts) ~= "table" then fail(":wait", "opts must be a table", 2) end
  return bulk.wait(self, st, task_ids, opts)
end

--- client:set_credentials{secret_id, secret_key, token} -> true | nil, err
-- Replaces the credentials of a live client (the connection stays); the old
-- ones are wiped. Refused credentials leave the client as it was.
function methods:set_credentials(t)
  local st = check_self(self, "set_credentials")
  if type(t) ~= "table" then fail(":set_credentials", "argument must be a table", 2) end
  local ok, err = credentials.check(t.secret_id, t.secret_key, t.token)
  if not ok then return nil, err end
  checked(pcall(raw_set_credentials, self, {
    secret_id = t.secret_id, secret_key = t.secret_key, token = t.token ~= "" and t.token or nil }))
  st.credential_source = t.source or "set_credentials"
  return true
end

--- client:info() -> { service, endpoint, host, version, region, language,
-- closed, credential_source } (no secrets)
function methods:info()
  local st = check_self(self, "info")
  local info = raw_info(self)
  info.credential_source = st and st.credential_source
  return info
end

--- client:close() -> true. Idempotent; also on __gc and __close.
function methods:close()
  check_self(self, "close")
  raw_close(self)
  return true
end

return M
