--- resty.ecdn: the non-blocking lua-ecdn client for OpenResty / lua-nginx-module.
--
--   local ecdn = require "resty.ecdn"
--   local client, err = ecdn.new { limit_dict = "ecdn_limit", rate = 20 }   -- + ecdn.client's options
--   local res, err = client:purge{ "https://www.example.com/a.jpg" }       -- rewrite/access/content/timer
--   local ok, err = client:purge_async(urls, function(res, err) ... end)  -- any phase but init
--
-- The pipeline of ecdn.client with nginx's own I/O: ecdn.request builds the
-- body, ecdn.signer signs it (the C signer: pure CPU, safe anywhere),
-- resty.ecdn.http sends it over ngx.socket.tcp (keep-alive pool, TLS by
-- nginx), and ecdn.decode turns the answer into the same result and error
-- tables as ecdn.client. A rate limiter (resty.ecdn.limit) waits with
-- ngx.sleep before each request; with `limit_dict` it holds across all
-- workers.
--
-- Expected failures are `nil, err` (error tables of ecdn.errors); programming
-- errors (bad options, a non-table argument) raise at the caller's line.
if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
  error("resty.ecdn runs inside nginx (lua-nginx-module / OpenResty); elsewhere use require(\"ecdn\").client", 2)
end

local bulk = require "ecdn.bulk"
local core = require "ecdn.core"
local credentials = require "ecdn.credentials"
local decode = require "ecdn.decode"
local errors = require "ecdn.errors"
local limiter = require "ecdn.limiter"
local options = require "ecdn.options"
local request = require "ecdn.request"
local services = require "ecdn.services"
local signer = require "ecdn.signer"
local times = require "ecdn.times"
local http = require "resty.ecdn.http"
local limit = require "resty.ecdn.limit"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local get_phase = ngx.get_phase
local sub = string.sub

local M = { _VERSION = core._VERSION }

-- ecdn.client's options, and the nginx ones.
local OPTIONS = options.with {
  limit_dict = "string", keepalive_timeout = "number", keepalive_pool = "number",
}
local FLUSH_TYPES = options.FLUSH_TYPES

M.DEFAULT_TIMEOUT, M.DEFAULT_CONNECT_TIMEOUT = 10, 5 -- seconds, as ecdn.client
M.DEFAULT_KEEPALIVE_TIMEOUT, M.DEFAULT_KEEPALIVE_POOL = 60, 16
-- The limiter's window: the service counts per second, at the time a request
-- ARRIVES; our grants are taken a little earlier (signing, connecting), and
-- not every request takes as long. 50 ms of margin keeps jitter of up to that
-- from putting rate + 1 requests into one of the service's seconds.
M.WINDOW = 1.05

-- Where cosockets (and ngx.sleep) work. Everywhere else purge and call
-- answer with a PhaseError pointing at purge_async.
local COSOCKET_PHASES = { rewrite = true, access = true, content = true, timer = true }

local Client = {}
Client.__index = Client

local function fail(fn, message, level)
  error("resty.ecdn" .. fn .. ": " .. message, level + 1)
end

local function positive(opts, name, default)
  local v = opts[name]
  if v == nil then return default end
  if not (v > 0 and v <= 86400) then fail("", "field '" .. name .. "' must be in (0, 86400] seconds", 3) end
  return v
end

--- ecdn.new(opts) -> client | nil, err. Any phase (init_by_lua included):
-- nothing is sent. Bad option names, types or values raise.
function M.new(opts)
  local service, url, host
  opts, service, url, host = options.check(opts, OPTIONS, "resty.ecdn", 2)
  if opts.cafile then
    fail("", "field 'cafile' is not used in nginx: set lua_ssl_trusted_certificate in nginx.conf", 2)
  end
  if opts.proxy and opts.proxy ~= "" then
    fail("", "field 'proxy' is not supported by resty.ecdn (cosockets connect directly)", 2)
  end
  local timeout = positive(opts, "timeout", M.DEFAULT_TIMEOUT)
  local connect_timeout = positive(opts, "connect_timeout", M.DEFAULT_CONNECT_TIMEOUT)
  local keepalive_timeout = opts.keepalive_timeout or M.DEFAULT_KEEPALIVE_TIMEOUT
  if not (keepalive_timeout >= 0 and keepalive_timeout <= 86400) then
    fail("", "field 'keepalive_timeout' must be in [0, 86400] seconds (0: no keep-alive)", 2)
  end
  local pool_size = opts.keepalive_pool or M.DEFAULT_KEEPALIVE_POOL
  if not (pool_size >= 1 and pool_size <= 65536 and pool_size == math.floor(pool_size)) then
    fail("", "field 'keepalive_pool' must be a whole number >= 1", 2)
  end
  local rate = opts.rate or services.RATE_PER_SECOND
  if not (rate >= 0 and rate <= 1e6 and rate == math.floor(rate)) then
    fail("", "field 'rate' must be a whole number >= 0 (0: no limit)", 2)
  end
  local dict
  if opts.limit_dict then
    dict = ngx.shared[opts.limit_dict]
    if not dict then
      fail("", "field 'limit_dict': no `lua_shared_dict " .. opts.limit_dict .. " 1m;` in nginx.conf", 2)
    end
  end

  local cred, err = credentials.resolve(opts, os.getenv)
  if not cred then
    if opts.secret_id == nil and opts.secret_key == nil and err.code == "ClientError.CredentialError"
       and not tostring(err.message):find("env TENCENTCLOUD_SECRET_ID;", 1, true) then
      err.message = err.message .. "; inside nginx, Lua sees only the environment variables that nginx.conf "
        .. "names: env TENCENTCLOUD_SECRET_ID; env TENCENTCLOUD_SECRET_KEY; (and env TENCENTCLOUD_SESSION_TOKEN;)"
    end
    return nil, err
  end

  local target = http.target(url)
  local verify = opts.verify ~= false
  local self = setmetatable({
    service = service, url = url, host = host,
    sign_target = { url = url, host = host, service = service,
                    version = opts.version or services[service].version,
                    region = opts.region, language = opts.language },
    cred = { secret_id = cred.secret_id, secret_key = cred.secret_key, token = cred.token },
    credential_source = cred.source, clock = opts.clock, rate = rate, limit_dict = opts.limit_dict,
    issued_by = {}, -- bulk.remember's: the TaskIds this client was given
    conf = { target = target, pool = http.pool_name(target, verify), verify = verify,
             timeout = timeout, connect_timeout = connect_timeout,
             keepalive_timeout = keepalive_timeout, keepalive_pool = pool_size,
             max_body = http.MAX_BODY, max_headers = http.MAX_HEADERS, user_agent = core.USER_AGENT },
  }, Client)
  -- Region, language and version become headers: the signer refuses CR/LF
  -- and the like when it is prepared, now, not at the first purge.
  local ok, prepared = pcall(signer.prepare, self.sign_target, self.cred)
  if not ok then fail("", (tostring(prepared):gsub("^[^:]*:%d+: ", ""):gsub("^tc3_signer: ", "")), 2) end
  self.signer = prepared
  self:_set_limiter()
  return self
end

-- The limiter of this client's account (keyed by SecretId, rate and window):
-- shared by all workers through limit_dict, else by the clients of this worker.
function Client:_set_limiter()
  if self.rate == 0 then
    self.limiter = nil
    return
  end
  local dict = self.limit_dict and ngx.shared[self.limit_dict]
  self.limiter = limit.new { rate = self.rate, window = M.WINDOW, dict = dict,
                             key = "resty.ecdn|" .. ngx.md5(self.cred.secret_id):sub(1, 16) }
end

local function check_self(self, fn)
  if getmetatable(self) ~= Client then
    fail(":" .. fn, "call it as client:" .. fn .. "(...) on a resty.ecdn client", 3)
  end
  if self.closed then fail(":" .. fn, "the client is closed", 3) end
end

--- The error for a cosocket call from a phase without cosockets.
local function phase_error(fn)
  local phase = get_phase()
  if COSOCKET_PHASES[phase] then return nil end
  local hint = phase == "init"
    and "; make the client here and purge from a request handler or a timer (init_worker_by_lua: ngx.timer.at)"
    or "; use client:purge_async(urls, done), which purges from ngx.timer.at(0)"
  return errors.new { code = "ClientError.PhaseError", kind = "client", retryable = false, sent = false,
                      message = "resty.ecdn: client:" .. fn .. " cannot run in nginx's " .. phase .. " phase "
                        .. "(cosockets work in rewrite, access, content and timers)" .. hint }
end

local function timestamp(self)
  local t = times.now(self.clock, ngx.time)
  if not t then fail("", "clock() must return unix seconds", 4) end
  return math.floor(t)
end

-- The failure when close() ran first: another light thread closed the
-- client while this one slept in the limiter, or before purge_async's timer
-- ran. Nothing went out, nor will (the closed signer would raise).
local function closed_failure()
  return { kind = "network", detail = "client_closed", sent = false, retryable = false, tls = false, attempts = 0,
           message = "resty.ecdn: the client was closed before the request was sent" }
end

--- client:_send(action, body, resend) -> raw | nil, failure: the limiter,
-- then sign and send (for the methods here, and for the bulk engine later).
-- Only in cosocket phases.
function Client:_send(action, body, resend)
  local lim = self.limiter
  if lim then lim:acquire(limit.sleep) end
  if self.closed then return nil, closed_failure() end
  local req = self.signer:request(action, body, timestamp(self))
  return http.request(self.conf, req, resend)
end

-- A TaskId the service gave this client: never a later purge_all lookup's
-- find (as ecdn.client; bulk.remember keeps the last ones in self.issued_by).
function Client:_remember(res, err)
  if res and res.task_id then bulk.remember(self.issued_by, res.task_id) end
  return res, err
end

-- The service's own rate refusal (other clients share the account) holds
-- back every user of the limiter for a second.
function Client:_limited(res, err)
  if err and err.kind == "api" and err.code:find("^RequestLimitExceeded") and self.limiter then
    self.limiter:penalize(1)
  end
  return res, err
end

-- CDN's Area and UrlEncode (ecdn.options.cdn_extras, as ecdn.client):
-- the JSON members to end the body with, or nil; a bad value raises.
local function cdn_tail(self, fn, opts)
  local tail, problem = options.cdn_extras(opts, self.service == "cdn", '"cdn"')
  if tail == false then fail(fn, problem, 3) end
  return tail ~= "" and tail or nil
end

--- client:purge(urls [, {area, url_encode}]) -> { task_id, request_id, attempts } | nil, err
function Client:purge(urls, opts)
  check_self(self, "purge")
  if type(urls) ~= "table" then fail(":purge", "urls must be a table (got " .. type(urls) .. ")", 2) end
  if opts ~= nil and type(opts) ~= "table" then fail(":purge", "opts must be a table", 2) end
  local tail = cdn_tail(self, ":purge", opts)
  local perr = phase_error("purge")
  if perr then return nil, perr end
  local body, problem = request.purge_urls(urls)
  if not body then return nil, decode.local_error(problem, self.service, "URL") end
  if tail then body = sub(body, 1, -2) .. tail .. "}" end
  return self:_remember(self:_limited(decode.task(self:_send("PurgeUrlsCache", body, false))))
end

--- client:purge_paths(paths, {flush_type = "flush"|"delete", area, url_encode}) -> as purge
function Client:purge_paths(paths, opts)
  check_self(self, "purge_paths")
  if type(paths) ~= "table" then fail(":purge_paths", "paths must be a table (got " .. type(paths) .. ")", 2) end
  local flush_type = type(opts) == "table" and opts.flush_type or nil
  if not FLUSH_TYPES[flush_type] then
    fail(":purge_paths", "opts.flush_type must be \"flush\" or \"delete\"", 2)
  end
  local tail = cdn_tail(self, ":purge_paths", opts)
  local perr = phase_error("purge_paths")
  if perr then return nil, perr end
  local body, problem = request.purge_paths(paths, flush_type)
  if not body then return nil, decode.local_error(problem, self.service, "path") end
  if tail then body = sub(body, 1, -2) .. tail .. "}" end
  return self:_remember(self:_limited(decode.task(self:_send("PurgePathCache", body, false))))
end

--- client:call(action, params) -> decoded Response table (plus `attempts`) | nil, err
-- Describe* actions may be written again when a kept-alive connection dies
-- under them (they change nothing); every other action at most once.
function Client:call(action, params)
  check_self(self, "call")
  local body, resend = request.call(action, params)
  if not body then fail(":call", resend, 2) end -- (resend is the problem then)
  local perr = phase_error("call")
  if perr then return nil, perr end
  return self:_limited(decode.outcome(self:_send(action, body, resend)))
end

-- The timer behind purge_async: the purge, then done(res, err). Runs even
-- when premature (nginx is stopping): the purge was asked for.
local function async_purge(premature, self, body, done)
  local res, err = self:_remember(self:_limited(decode.task(self:_send("PurgeUrlsCache", body, false))))
  if done then
    local ok, derr = pcall(done, res, err, premature)
    if not ok then ngx.log(ngx.ERR, "resty.ecdn: purge_async: the done callback raised: ", tostring(derr)) end
  elseif not res then
    ngx.log(ngx.ERR, "resty.ecdn: purge_async failed: ", tostring(err))
  end
end

--- client:purge_async(urls, done) -> true | nil, err
-- From any phase that may create timers (all but init): the URLs are checked
-- now (a bad one is `nil, err` at once, nothing scheduled), the purge runs in
-- ngx.timer.at(0) and calls done(res, err) there (a cosocket phase: done may
-- purge or call again). Without `done`, a failure is logged at ERR level.
function Client:purge_async(urls, done)
  check_self(self, "purge_async")
  if type(urls) ~= "table" then fail(":purge_async", "urls must be a table (got " .. type(urls) .. ")", 2) end
  if done ~= nil and type(done) ~= "function" then
    fail(":purge_async", "done must be a function (got " .. type(done) .. ")", 2)
  end
  local body, problem = request.purge_urls(urls)
  if not body then return nil, decode.local_error(problem, self.service, "URL") end
  if get_phase() == "init" then
    return nil, errors.new { code = "ClientError.PhaseError", kind = "client", retryable = false, sent = false,
      message = "resty.ecdn: client:purge_async cannot run in nginx's init phase (no timers yet); "
        .. "use init_worker_by_lua" }
  end
  local ok, terr = ngx.timer.at(0, async_purge, self, body, done)
  if not ok then
    return nil, errors.new { code = "ClientError.TimerError", kind = "client", sent = false,
                             retryable = terr ~= "process exiting",
                             message = "resty.ecdn: client:purge_async: cannot start a timer: " .. tostring(terr) }
  end
  return true
end

-- ecdn.bulk drives its transport through _start/_wait (in ecdn.client: libcurl
-- multi in C). Here each request is a light thread, and a semaphore wakes
-- the engine when one has finished.
local function runner(self)
  local sema = assert(semaphore.new())
  local finished, next_id = {}, 0
  local r = {}
  function r._start(_, action, body, ts, resend)
    if self.closed then return nil, closed_failure() end
    next_id = next_id + 1
    local id = next_id
    local req = self.signer:request(action, body, ts)
    local th, err = ngx.thread.spawn(function()
      local ok, raw, failure = pcall(http.request, self.conf, req, resend)
      if not ok then -- never leave the engine waiting for a thread that died
        raw, failure = nil, { kind = "network", detail = "bad_request", sent = true, retryable = false,
                              attempts = 1, message = "resty.ecdn: " .. tostring(raw) }
      end
      finished[#finished + 1] = { id = id, raw = raw, failure = failure }
      sema:post(1)
    end)
    if not th then
      return nil, { kind = "network", detail = "bad_request", sent = false, retryable = false, attempts = 0,
                    message = "resty.ecdn: cannot start a light thread: " .. tostring(err) }
    end
    return id
  end
  function r._wait(_, timeout)
    if #finished == 0 then sema:wait(timeout) end
    local out = finished
    finished = {}
    return out
  end
  function r.call(_, action, params)
    if self.closed then return nil, decode.network(closed_failure()) end
    return self:call(action, params)
  end
  return r
end

--- client:purge_all(urls, opts) -> report | nil, err: ecdn.client's
-- purge_all (lua/ecdn/bulk.lua: batches, limiter, retries, lookups, exact
-- accounting) on light threads; `concurrency` threads at most.
function Client:purge_all(urls, opts)
  check_self(self, "purge_all")
  if type(urls) ~= "table" then fail(":purge_all", "urls must be a table (got " .. type(urls) .. ")", 2) end
  local perr = phase_error("purge_all")
  if perr then return nil, perr end
  local st = {
    service = self.service, clock = self.clock, clock_offset = 0,
    limiter = self.limiter or limiter.NONE, rate = self.rate, window = M.WINDOW,
    now = function() ngx.update_time() return ngx.now() end,
    sleep = function(secs) ngx.sleep(secs) return true end,
    timestamp = function() return timestamp(self) end,
    refresh = function() return true end,
    correct = function() return false end,
    observe = function() end, -- (lookup windows use ngx.time(), the host's clock)
    issued = bulk.issued(self.issued_by), -- TaskIds given before (one table with purge's): never a lookup's find
  }
  local report, err = bulk.purge_all(runner(self), st, urls, opts) -- not a tail call: errors name the caller
  return report, err
end

--- client:set_credentials{secret_id, secret_key, token} -> true | nil, err
function Client:set_credentials(t)
  check_self(self, "set_credentials")
  if type(t) ~= "table" then fail(":set_credentials", "argument must be a table", 2) end
  local ok, err = credentials.check(t.secret_id, t.secret_key, t.token)
  if not ok then return nil, err end
  local cred = { secret_id = t.secret_id, secret_key = t.secret_key, token = t.token ~= "" and t.token or nil }
  local prepared = signer.prepare(self.sign_target, cred) -- (the fields were checked above)
  self.signer:close() -- wipes the old key
  self.cred, self.signer = cred, prepared
  self.credential_source = t.source or "set_credentials"
  self:_set_limiter()
  return true
end

--- client:info() -> { service, endpoint, host, version, region, language,
-- credential_source, rate, limit_dict, keepalive_timeout, keepalive_pool } (no secrets)
function Client:info()
  check_self(self, "info")
  local s = self.sign_target
  return { service = self.service, endpoint = self.url, host = self.host, version = s.version,
           region = s.region, language = s.language, credential_source = self.credential_source,
           rate = self.rate, limit_dict = self.limit_dict, verify = self.conf.verify,
           keepalive_timeout = self.conf.keepalive_timeout, keepalive_pool = self.conf.keepalive_pool }
end

--- client:close() -> true: drops the credentials; later calls raise.
-- Idempotent. Connections belong to nginx's keep-alive pool, not to a client.
function Client:close()
  if getmetatable(self) ~= Client then fail(":close", "call it as client:close()", 2) end
  self.closed = true
  self.cred = nil
  if self.signer then self.signer:close() end -- wipes the key
  return true
end

function Client.__tostring(self)
  local id = self.cred and self.cred.secret_id or ""
  return "resty.ecdn client (" .. self.url .. ", " .. (self.closed and "closed" or id:sub(1, 8) .. "...") .. ")"
end

return M
