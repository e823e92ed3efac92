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
local options = require "ecdn.options"
local request = require "ecdn.request"
local services = require "ecdn.services"
local times = require "ecdn.times"
local v1 = require "ecdn.v1"

local M = {}

local OPTIONS = options.with {
  limiter = "table",           -- a shared ecdn.limiter (or anything with take/penalize/acquire)
  signature = "string",        -- "tc3" (default) or "v1"
  signature_method = "string", -- v1: "HmacSHA256" (default) or "HmacSHA1"
  credentials = "table",       -- a provider from ecdn.credentials (rotated before expiry)
}
local FLUSH_TYPES, AREAS = options.FLUSH_TYPES, options.AREAS

-- The CVM metadata service for the default chain: $ECDN_METADATA_ENDPOINT
-- names another (tests), "off" never asks it. A value that is neither is
-- the environment's mistake, not the caller's: nil, err (no raise).
local function metadata_option()
  local where = os.getenv("ECDN_METADATA_ENDPOINT")
  if where == "off" then return false end
  if where and where ~= "" then
    if not credentials.valid_metadata_endpoint(where) then
      return nil, select(2, credentials.error("the environment variable ECDN_METADATA_ENDPOINT must be"
        .. " \"off\" or http://host[:port] (the CVM metadata service)"))
    end
    return { endpoint = where }
  end
  return nil
end

-- The limiter's window: the service counts arrivals, which jitter against
-- our sends, so a window a little longer than its second keeps a burst at a
-- window's edge from arriving as rate + 1 inside one second.
local LIMIT_WINDOW = 1.05

-- Per-client Lua-side state (clock, service, credential source), keyed
-- weakly by the userdata.
local state = setmetatable({}, { __mode = "k" })

-- The C userdata's private methods; the public ones are defined below.
local methods = core.client_methods
local raw_purge, raw_purge_paths, raw_send = methods._purge, methods._purge_paths, methods._send
local raw_info, raw_close, raw_set_credentials = methods._info, methods._close, methods._set_credentials
local raw_set_target = methods._set_target

local function fail(fn, message, level)
  error("ecdn.client" .. fn .. ": " .. message, level + 1)
end

local floor = math.floor

-- The local idea of unix time: the clock option (tests) or the system's.
local function local_time(st)
  if not st.clock then return os.time() end
  local t = times.now(st.clock, os.time)
  if not t then fail("", "clock() must return unix seconds", 5) end
  return t
end

-- Unix seconds to sign with: local time corrected by what the service's
-- Date header taught us (AuthFailure.SignatureExpire).
local function timestamp(st)
  return floor(local_time(st) + st.clock_offset)
end

local correction -- what the service asks to correct once (defined with the methods)
local learn_offset -- the service's clock from an answer's Date header (likewise)

-- libcurl would block the nginx worker: in a request or timer, resty.ecdn.
-- (Checked when a client is made and before each request: a client made in
-- init_by_lua must not be used from a handler either.)
local function not_in_nginx_request(fn, level)
  local ngx = rawget(_G, "ngx")
  local phase = type(ngx) == "table" and type(ngx.get_phase) == "function" and ngx.get_phase()
  if phase and phase ~= "init" and phase ~= "init_worker" and phase ~= "exit_worker" then
    fail(fn, "blocks the nginx worker (phase '" .. phase .. "'): inside nginx use resty.ecdn", level + 1)
  end
end

--- ecdn.client(opts) -> client | nil, err. Bad option names or types raise.
function M.new(opts)
  not_in_nginx_request("", 2)
  local service, url, host
  opts, service, url, host = options.check(opts, OPTIONS, "ecdn.client", 2, true)
  local auto = opts.service == "auto" -- start on ECDN, move to CDN when the account has
  local signature = opts.signature or "tc3"
  if signature ~= "tc3" and signature ~= "v1" then fail("", "field 'signature' must be \"tc3\" or \"v1\"", 2) end
  local signature_method = opts.signature_method or "HmacSHA256"
  if signature_method ~= "HmacSHA256" and signature_method ~= "HmacSHA1" then
    fail("", "field 'signature_method' must be \"HmacSHA256\" or \"HmacSHA1\"", 2)
  end
  if opts.credentials and (opts.secret_id or opts.secret_key or opts.token) then
    fail("", "give either 'credentials' (a provider) or secret_id/secret_key/token, not both", 2)
  end
  if opts.credentials and type(opts.credentials.get) ~= "function" then
    fail("", "field 'credentials' must be a provider (see ecdn.credentials)", 2)
  end
  -- The provider, or the default chain: options, environment, profile file,
  -- CVM role. The refresher rotates expiring credentials on this client.
  local provider = opts.credentials
  if not provider then
    local cvm_role, bad_env = metadata_option()
    if bad_env then return nil, bad_env end
    provider = credentials.default {
      secret_id = opts.secret_id, secret_key = opts.secret_key, token = opts.token, cvm_role = cvm_role,
    }
  end
  -- (It reads the clock option too: checked the same way.)
  local clock = opts.clock
  local refresher = credentials.refresher(provider, clock and function()
    local t = times.now(clock, os.time)
    if not t then error("ecdn.client: clock() must return unix seconds", 0) end
    return t
  end or os.time)
  local cred, err = refresher:current()
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
  local st = { refresher = refresher, clock = opts.clock, clock_offset = 0, service = service, auto = auto,
               url = url, host = host,
               default_endpoint = opts.endpoint == nil, signature = signature, signature_method = signature_method,
               region = opts.region, credential_source = cred.source,
               limiter = opts.limiter
                 or (rate > 0 and limiter.new { rate = rate, window = LIMIT_WINDOW, clock = core.now })
                 or limiter.NONE,
               rate = rate, window = LIMIT_WINDOW, now = core.now, sleep = core.sleep }
  st.timestamp = function() return timestamp(st) end
  st.correct = function(self, e, raw, done) return correction(self, st, e, raw, done) end
  -- The service's clock from any answer (purge_all's lookup windows).
  -- (true when this answer's Date gave it)
  st.observe = function(raw) return raw ~= nil and learn_offset(st, raw) end
  -- Credentials that are about to expire are replaced before the request.
  -- (It takes the client as an argument: st must not refer to it, or the
  -- weak-keyed state would keep every client alive on LuaJIT.)
  -- The client never invalidates its refresher: settled credentials stay
  -- as they are while os.time is the same function, and the refresher need
  -- not be asked again (st.settled holds that os.time).
  st.refresh = function(self)
    if st.settled == os.time then return true end
    local creds, changed_or_err = refresher:current()
    if not creds then return nil, changed_or_err end
    if changed_or_err then
      raw_set_credentials(self, { secret_id = creds.secret_id, secret_key = creds.secret_key, token = creds.token })
      st.credential_source = creds.source
    end
    -- (Latched with the os.time it was judged on: another os.time makes the
    -- refresher read its clock again.)
    st.settled = refresher:settled() and os.time or nil
    return true
  end
  state[c] = st
  return c
end

-- Only clients made by M.new have state: that is the type check.
local function check_self(self, fn)
  local st = state[self]
  if st == nil then fail(":" .. fn, "call it as client:" .. fn .. "(...) on an ecdn.client", 3) end
  return st
end

-- The client's limiter before each request; the service's own rate refusal
-- (other clients on the account) slows every user of the limiter down.
local function limited(st, res, err)
  if err and err.kind == "api" and err.code:find("^RequestLimitExceeded") then st.limiter:penalize(1) end
  return res, err
end


-- Learns the service's clock from an answer's Date header; true if it did.
function learn_offset(st, raw)
  local server = raw and raw.headers and times.http_date(raw.headers.date)
  if not server then return false end
  st.clock_offset = server - local_time(st)
  st.refresher:set_offset(st.clock_offset) -- expiry times are the service's too
  return true
end

-- service = "auto": the account has moved from ECDN to CDN; go on there.
local function switch_to_cdn(self, st)
  local url, host = st.url, st.host
  if st.default_endpoint then url, host = endpoint.parse("https://" .. services.cdn.host) end
  raw_set_target(self, { service = "cdn", host = host, version = services.cdn.version, url = url })
  st.service, st.url, st.host = "cdn", url, host
end

-- What the service asks to correct once before the error is final.
function correction(self, st, err, raw, done)
  if err.code == "AuthFailure.SignatureExpire" and not done.skew and learn_offset(st, raw) then
    done.skew = true
    return true
  end
  if err.code == "UnauthorizedOperation.EcdnMigratedCdn" and st.auto and not done.switch then
    done.switch = true
    -- (Requests already in flight on ECDN come back the same way: go again.)
    if st.service == "ecdn" then switch_to_cdn(self, st) end
    return true
  end
  return false
end

-- One request through the pipeline: limiter, build-sign-send
-- (send(ts, self, st, x, y) -> raw | nil, failure | nil, nil, result when C
-- decoded the common answer itself), decode; then at most one clock
-- correction and one switch to CDN. C raises only for programming errors:
-- they point at the caller of the public method (which must not tail-call
-- this).
local function run(self, st, send, decoder, what, x, y)
  if rawget(_G, "ngx") ~= nil then not_in_nginx_request("", 3) end
  local done -- the corrections made (made when first needed)
  while true do
    local fresh, cred_err = st.refresh(self)
    if not fresh then return nil, cred_err end
    st.limiter:acquire(core.sleep)
    local ok, raw, failure, result = pcall(send, timestamp(st), self, st, x, y)
    -- (A C error raised under our closure carries its position: drop it.)
    if not ok then error((tostring(raw):gsub("^[^\n]-ecdn/[%w_]+%.lua:%d+: ", "")), 3) end
    if result then return result end -- the common answer, decoded in C
    if raw == nil and failure.kind == "client" then
      return nil, decode.local_error(failure, st.service, what)
    end
    local res, err = decoder(raw, failure)
    if not err then return res end
    done = done or {}
    if not correction(self, st, err, raw, done) then return limited(st, res, err) end
  end
end

-- CDN's Area and UrlEncode, checked: a function giving the raw JSON members
-- and the fields; on an "auto" client still on ECDN they wait for the switch
-- (ECDN has neither).
local function cdn_extras(st, fn, opts)
  local tail, fields = options.cdn_extras(opts, st.service == "cdn" or st.auto, '"cdn" or "auto"')
  if tail == false then fail(fn, fields, 3) end
  if tail == nil then return nil end
  return function()
    if st.service == "cdn" then return tail, fields end
  end
end

-- purge's send (a function of its own: the most frequent call makes no closure).
local function send_purge(ts, self, st, urls, extras)
  if st.signature == "v1" then return v1.purge(self, st, "PurgeUrlsCache", "Urls", urls, ts, extras) end
  -- (no tail call: C errors would carry no position)
  local raw, failure, result = raw_purge(self, urls, ts, extras and extras())
  return raw, failure, result
end

--- client:purge(urls [, {area, url_encode}]) -> { task_id, request_id, attempts } | nil, err
-- Sends all URLs in one PurgeUrlsCache request after local validation.
function methods:purge(urls, opts)
  local st = check_self(self, "purge")
  if type(urls) ~= "table" then fail(":purge", "urls must be a table (got " .. type(urls) .. ")", 2) end
  if opts ~= nil and type(opts) ~= "table" then fail(":purge", "opts must be a table", 2) end
  local res, err = run(self, st, send_purge, decode.task, "URL", urls, opts and cdn_extras(st, ":purge", opts))
  if res then bulk.remember(st, res.task_id) end -- (never a later purge_all lookup's find)
  return res, err
end

--- client:purge_paths(paths, {flush_type = "flush"|"delete", area, url_encode}) -> as purge
function methods:purge_paths(paths, opts)
  local st = check_self(self, "purge_paths")
  if type(paths) ~= "table" then fail(":purge_paths", "paths must be a table (got " .. type(paths) .. ")", 2) end
  local flush_type = type(opts) == "table" and opts.flush_type or nil
  if not FLUSH_TYPES[flush_type] then
    fail(":purge_paths", "opts.flush_type must be \"flush\" or \"delete\"", 2)
  end
  local extras = cdn_extras(st, ":purge_paths", opts)
  local res, err = run(self, st, function(ts)
    if st.signature == "v1" then
      return v1.purge(self, st, "PurgePathCache", "Paths", paths, ts, extras, flush_type)
    end
    local raw, failure, result = raw_purge_paths(self, paths, flush_type, ts, extras and extras())
    return raw, failure, result
  end, decode.task, "path")
  if res then bulk.remember(st, res.task_id) end
  return res, err
end

--- client:call(action, params) -> decoded Response table (plus `attempts`) | nil, err
-- Any action of the client's service and version. Describe* actions may be
-- written again when a kept-alive connection dies under them (they change
-- nothing); every other action is written at most once.
function methods:call(action, params)
  local st = check_self(self, "call")
  local body, resend
  body, resend, params = request.call(action, params)
  if not body then fail(":call", resend, 2) end -- (resend is the problem then)
  local res, err = run(self, st, function(ts)
    if st.signature == "v1" then return v1.call(self, st, action, params, ts, resend) end
    local raw, failure = raw_send(self, action, body, ts, resend)
    return raw, failure
  end, decode.outcome)
  return res, err
end

--- client:purge_all(urls, opts) -> report | nil, err
-- Any number of URLs: batches, concurrency under the rate limit, retries,
-- lookups of uncertain batches, exact accounting (see ecdn.bulk and the README).
function methods:purge_all(urls, opts)
  local st = check_self(self, "purge_all")
  if type(urls) ~= "table" then fail(":purge_all", "urls must be a table (got " .. type(urls) .. ")", 2) end
  not_in_nginx_request(":purge_all", 2)
  local report, err = bulk.purge_all(self, st, urls, opts) -- not a tail call: errors name the caller's line
  return report, err
end

--- client:purge_paths_all(paths, opts) -> report | nil, err: purge_all's twin
-- for directories (opts.flush_type required; 500 paths per request at most).
function methods:purge_paths_all(paths, opts)
  local st = check_self(self, "purge_paths_all")
  if type(paths) ~= "table" then fail(":purge_paths_all", "paths must be a table (got " .. type(paths) .. ")", 2) end
  local report, err = bulk.purge_all(self, st, paths, opts, "paths")
  return report, err
end

--- client:wait(task_ids, {timeout, interval}) -> { [task_id] = "done"|"fail"|"process"|"unknown" }
function methods:wait(task_ids, opts)
  local st = check_self(self, "wait")
  if type(task_ids) ~= "table" then fail(":wait", "task_ids must be a table", 2) end
  if opts ~= nil and type(opts) ~= "table" then fail(":wait", "opts must be a table", 2) end
  local status = bulk.wait(self, st, task_ids, opts)
  return status
end

--- client:push(urls, {area, user_agent}) -> { task_id, request_id, attempts } | nil, err
-- PushUrlsCache (prefetch), CDN only; the same local URL checks as purge.
function methods:push(urls, opts)
  local st = check_self(self, "push")
  if type(urls) ~= "table" then fail(":push", "urls must be a table (got " .. type(urls) .. ")", 2) end
  if opts ~= nil and type(opts) ~= "table" then fail(":push", "opts must be a table", 2) end
  opts = opts or {}
  if st.service ~= "cdn" and not st.auto then
    fail(":push", "PushUrlsCache exists on CDN only (service = \"cdn\")", 2)
  end
  if opts.area ~= nil and not AREAS[opts.area] then
    fail(":push", "area must be \"mainland\", \"overseas\" or \"global\"", 2)
  end
  if opts.user_agent ~= nil and (type(opts.user_agent) ~= "string" or opts.user_agent:find("[%c]")) then
    fail(":push", "user_agent must be a string without control characters", 2)
  end
  local ok, problem = request.purge_urls(urls) -- the local checks, in list order
  if not ok then return nil, decode.local_error(problem, st.service, "URL") end
  local params = { Urls = urls, Area = opts.area, UserAgent = opts.user_agent }
  local body = request.action(params)
  local res, err = run(self, st, function(ts)
    if st.service ~= "cdn" then -- an "auto" client still on ECDN: ECDN has no push
      return nil, { kind = "client", problem = "service", reason = "PushUrlsCache exists on CDN only" }
    end
    if st.signature == "v1" then return v1.call(self, st, "PushUrlsCache", params, ts, false) end
    local raw, failure = raw_send(self, "PushUrlsCache", body, ts, false)
    return raw, failure
  end, decode.task, "URL")
  return res, err
end

local TASK_FILTER = { task_id = "TaskId", keyword = "Keyword", status = "Status", purge_type = "PurgeType",
                      offset = "Offset", limit = "Limit", area = "Area" }

-- The DescribePurgeTasks parameters of a filter (times: unix seconds -> Beijing time).
local function task_params(fn, filter)
  if filter ~= nil and type(filter) ~= "table" then fail(fn, "filter must be a table", 3) end
  local p = {}
  for k, v in pairs(filter or {}) do
    if k == "start_time" or k == "end_time" then
      if type(v) ~= "number" then fail(fn, k .. " must be unix seconds", 3) end
      p[k == "start_time" and "StartTime" or "EndTime"] = times.beijing(v)
    elseif TASK_FILTER[k] then
      p[TASK_FILTER[k]] = v
    else
      fail(fn, "unknown filter '" .. tostring(k) .. "'", 3)
    end
  end
  return p
end

local function task_of(e)
  if type(e) ~= "table" then return nil end
  local clean = decode.clean
  return { task_id = clean(e.TaskId, decode.MAX_ID), url = clean(e.Url, decode.MAX_MESSAGE),
           status = clean(e.Status, decode.MAX_ID), purge_type = clean(e.PurgeType, decode.MAX_ID),
           flush_type = clean(e.FlushType, decode.MAX_ID), create_time = times.from_beijing(e.CreateTime) }
end

--- client:tasks(filter) -> array of {task_id, url, status, purge_type,
-- flush_type, create_time (unix seconds)}, total_count | nil, err.
-- filter: task_id, keyword, status, purge_type, start_time, end_time (unix
-- seconds), offset, limit, area (CDN).
function methods:tasks(filter)
  check_self(self, "tasks")
  local params = task_params(":tasks", filter)
  local resp, err = self:call("DescribePurgeTasks", params)
  if not resp then return nil, err end
  local list = {}
  for _, e in ipairs(type(resp.PurgeLogs) == "table" and resp.PurgeLogs or {}) do list[#list + 1] = task_of(e) end
  return list, type(resp.TotalCount) == "number" and resp.TotalCount or #list
end

--- client:each_task(filter) -> iterator over every page: `for task, err in client:each_task{...}`
-- (an error is yielded once as false, err; the iteration ends after it).
function methods:each_task(filter)
  check_self(self, "each_task")
  local params = task_params(":each_task", filter)
  local limit = params.Limit or 100
  params.Limit = limit
  local offset = params.Offset or 0
  local page, i, done = {}, 0, false
  return function()
    if done then return nil end
    i = i + 1
    if i > #page then
      params.Offset = offset
      local resp, err = self:call("DescribePurgeTasks", params)
      if not resp then
        done = true
        return false, err -- (nil would end a generic for before the body sees err)
      end
      page, i = type(resp.PurgeLogs) == "table" and resp.PurgeLogs or {}, 1
      offset = offset + #page
      if #page == 0 then
        done = true
        return nil
      end
      if #page < limit then done = "last" end
    end
    local t = task_of(page[i])
    if done == "last" and i == #page then done = true end
    return t
  end
end

local function quota_of(q)
  if type(q) ~= "table" then return nil end
  return { batch = q.Batch, total = q.Total, available = q.Available }
end

--- client:quota() -> ECDN: { urls = {batch, total, available}, paths = {...} };
-- CDN: { urls = { mainland = {...}, overseas = {...} }, paths = { ... } } | nil, err
function methods:quota()
  local st = check_self(self, "quota")
  local resp, err = self:call("DescribePurgeQuota", {})
  if not resp then return nil, err end
  local out = {}
  for field, name in pairs { UrlPurge = "urls", PathPurge = "paths" } do
    local q = resp[field]
    if type(q) == "table" and q[1] ~= nil then -- CDN: one per area
      local by_area = {}
      for _, e in ipairs(q) do
        if type(e) == "table" and type(e.Area) == "string" then by_area[e.Area] = quota_of(e) end
      end
      out[name] = by_area
    else
      out[name] = quota_of(q)
    end
  end
  out.service = st.service
  return out
end

--- client:set_credentials{secret_id, secret_key, token} -> true | nil, err
-- Replaces the credentials of a live client (the connection stays); the old
-- ones are wiped. Refused credentials leave the client as it was.
function methods:set_credentials(t)
  local st = check_self(self, "set_credentials")
  if type(t) ~= "table" then fail(":set_credentials", "argument must be a table", 2) end
  local ok, err = credentials.check(t.secret_id, t.secret_key, t.token)
  if not ok then return nil, err end
  local done, why = pcall(raw_set_credentials, self, {
    secret_id = t.secret_id, secret_key = t.secret_key, token = t.token ~= "" and t.token or nil })
  if not done then error(why, 2) end
  st.credential_source = t.source or "set_credentials"
  return true
end

--- client:info() -> { service, endpoint, host, version, region, language,
-- closed, credential_source } (no secrets)
function methods:info()
  local st = check_self(self, "info")
  local info = raw_info(self)
  info.credential_source = st and st.credential_source
  info.clock_offset = st and st.clock_offset
  info.signature = st and st.signature
  return info
end

--- client:close() -> true. Idempotent; also on __gc and __close.
function methods:close()
  check_self(self, "close")
  raw_close(self)
  return true
end

return M
