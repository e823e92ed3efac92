-- ecdn.sim: a local simulator of the Tencent Cloud ECDN/CDN purge service
-- (API 3.0: TC3-HMAC-SHA256 and signature V1) for offline tests. Runs on Lua
-- 5.4 + cqueues; this file itself also loads on Lua 5.1/LuaJIT (for the
-- constants and options()), the modules behind run() need 5.4.
--
--   local sim = require "ecdn.sim"
--   local cfg = assert(sim.options{ "--port", "0", "--rate", "0" })
--   sim.run(cfg)   -- prints "listening on http://127.0.0.1:PORT", serves until SIGTERM/SIGINT
--
-- Default credentials (used when no --secret is given):
--   SecretId  AKIDSIMULATOR00000000000000000000000
--   SecretKey SimulatorSecretKeyForLuaEcdn0000
--
-- Modules: server (HTTP on cqueues, faults, stats, signals, Date header),
-- service (routing, rules, quotas, tasks, log entries), auth (TC3 and V1
-- verification), form (query strings and form bodies), faults, log, json
-- (ordered encoder), random (seeded streams). Nothing from the product
-- (ecdn.core, ecdn.*) is used: both signatures are verified with its own code
-- on luaossl's raw HMAC/SHA-256.
--
-- Decisions where the real service is not documented:
-- * Checks run in this order: signature (TC3: Authorization format, SecretId,
--   timestamp, signature, token; V1: SecretId, Timestamp, Nonce, Signature,
--   token); then Action/Version present, NoSuchVersion, InvalidAction, rate
--   limit, --migrated; then parameters and the action's rules.
-- * A request is V1 when it has no Authorization header and is a GET or a
--   POST with Content-Type application/x-www-form-urlencoded; its parameters
--   (query or body) carry SecretId, Timestamp, Nonce, Signature. Any
--   SignatureMethod other than exactly HmacSHA256 means HmacSHA1 (as the
--   documentation says). A V1 POST body over 1 MB is refused with
--   AuthFailure.SignatureFailure (the service's own wording: use TC3); a GET
--   query over 32 KB with RequestSizeLimitExceeded (TC3 and V1). A parameter
--   given twice is InvalidParameter. Nonces are not checked for replays.
-- * The product is the Host's first label when it is ecdn/cdn, else (TC3) the
--   credential scope's service, or (V1) the product whose Version the request
--   names; a TC3 scope naming another product is refused
--   (AuthFailure.InvalidAuthorization).
-- * X-TC-Token / Token sent with permanent credentials -> AuthFailure.TokenFailure.
-- * Rate limit per SecretId, all actions and both products together. Sliding
--   (default): a request is refused when N requests were accepted in the last
--   1,000 ms, i.e. at times t with now - 1 < t <= now (one accepted exactly
--   1,000 ms ago no longer counts); refused requests do not count. Setting the
--   fake clock back before a SecretId's last accepted request clears its
--   window. Fixed (--rate-window fixed): one-second windows [S, S+1) of the
--   clock, every request counted, refused ones too.
-- * --migrated ID: every ecdn action signed by ID answers
--   UnauthorizedOperation.EcdnMigratedCdn after the rate limit (it counts);
--   cdn requests by ID work as usual.
-- * Quotas are per SecretId, product, kind (url/path/push) and, for CDN, area
--   (Area omitted = mainland); days start at 00:00 Beijing time. A refused
--   request uses no quota. A global push uses both areas' push quota. Empty
--   Urls/Paths -> InvalidParameter.*ParamError.
-- * URLs must be valid UTF-8 without control bytes, start with http:// or
--   https:// (any case) and name a host; the host is compared to --domains
--   without port or user info, case-insensitively. UrlEncode is accepted and
--   logged; URLs are kept as sent.
-- * Tasks: one per accepted purge/push; "process" until --task-ms after it
--   was accepted, then "done", or "fail" for the tasks drawn by
--   --task-fail-rate (one draw per task from its own seeded stream). A failing
--   task still used its quota and is logged (with "fail":true).
-- * DescribePurgeTasks / DescribePushTasks: TaskId or StartTime is required
--   (else InvalidParameter.*ParamError); StartTime/EndTime are Beijing time,
--   inclusive, to the second (EndTime omitted = no upper bound); Keyword
--   starting with http:// or https:// selects the entries whose Url equals it
--   byte for byte, any other Keyword (a domain) the entries whose Url contains
--   it, case-insensitively; CDN Area filters by the task's area (global: every
--   area for purges, the global pushes for pushes); newest task first, each
--   task's URLs in request order; Offset >= 0, Limit 1..1000 (default 20).
--   URL purges report FlushType "delete" (the API says flush only occurs for
--   path purges).
-- * Faults: for each API request the faults draw six numbers from the seeded
--   stream (same seed + same request order = same faults). A drop wins over a
--   failure, a failure over garbage. Failures and garbage answer before the
--   request is processed (nothing is purged or logged); half of the drops
--   close after processing and logging. --delay-ms applies to every request.
-- * --fake-clock: one number replaces the wall clock for everything the
--   service decides (auth skew, rate windows, task states, quota days, ids,
--   log "at", the Date header); --delay-ms and the connection timeouts stay
--   real time.
-- * Every HTTP answer carries a Date header (IMF-fixdate) from the
--   simulator's clock, so clients can measure their skew from it.
-- * GET /__stats: {connections (TCP connections whose first request was an
--   API call), stats_connections (first request was GET /__stats
--   or POST /__clock), active,
--   max_active, requests (API requests), http {status -> n}, codes {Success |
--   error code | "Garbage" -> n}, dropped, accept_errors (accept failures,
--   e.g. out of file descriptors), purged_urls, purged_paths, pushed_urls}.
local M = {}

M.DEFAULT_SECRET_ID = "AKIDSIMULATOR00000000000000000000000"
M.DEFAULT_SECRET_KEY = "SimulatorSecretKeyForLuaEcdn0000"

M.USAGE = [[
Usage: ecdn-sim [options]

A local simulator of the Tencent Cloud ECDN (2019-10-12) and CDN (2018-06-06)
purge APIs: PurgeUrlsCache, PurgePathCache, DescribePurgeTasks,
DescribePurgeQuota, and on CDN only PushUrlsCache, DescribePushTasks,
DescribePushQuota. API 3.0 signed with TC3-HMAC-SHA256 (POST / with a JSON
body, or GET with query parameters) or with signature V1 (HmacSHA1 or
HmacSHA256; GET, or POST application/x-www-form-urlencoded; lists as Urls.0,
Urls.1, ...). The product comes from the Host (ecdn.* / cdn.*), else from the
TC3 credential scope or the V1 Version. Listens on 127.0.0.1; when ready it
prints one line:
  listening on http://127.0.0.1:PORT
Stops cleanly on SIGINT/SIGTERM. GET /__stats answers JSON counters. Every
answer has a Date header from the simulator's clock.

Options:
  --port N            TCP port, 0 = any free port (default 0)
  --secret ID:KEY     accepted credentials, repeatable (default: the pair below)
  --token ID:TOKEN    temporary credentials: ID (given with --secret) must
                      send X-TC-Token (V1: Token) TOKEN; repeatable
  --migrated ID       ID's account has moved to CDN: every ecdn action it
                      signs answers UnauthorizedOperation.EcdnMigratedCdn
                      (after the rate limit), its cdn calls work; repeatable;
                      ID must be accepted (the default ID, or a --secret)
  --domains A,B       purgeable host names, exact match, any case (default: any)
  --rate N            requests per second per SecretId, 0 = off (default 20):
                      a request is refused with RequestLimitExceeded when N
                      were accepted in the last 1,000 ms (refused ones do not
                      count)
  --rate-window W     sliding (default, as above) or fixed: N per second of
                      the clock ([S, S+1)), refused requests counted too
  --batch N           URLs per PurgeUrlsCache request (default 1000)
  --quota N           URLs per day per SecretId, product and CDN area; days
                      start at 00:00 Beijing time (default 10000)
  --path-batch N      paths per PurgePathCache request (default ecdn 20, cdn 500)
  --path-quota N      paths per day, counted like --quota (default 100)
  --push-batch N      URLs per PushUrlsCache request (CDN; default 500)
  --push-quota N      pushed URLs per day and area, like --quota (default
                      1000); Area global uses both mainland and overseas
  --url-max N         longest URL in bytes (default 1024)
  --task-ms N         tasks go from "process" to "done" (or "fail") after N ms
                      (default 2000)
  --task-fail-rate P  a task ends in "fail" instead of "done" with probability
                      P, drawn per task from the --seed stream (default 0)
  --log FILE          append one JSON line per accepted purge or push, flushed
                      before the answer:
                      {task_id,request_id,secret_id,service,urls,at}
                      (PurgePathCache: {...,action,paths,flush_type,at};
                      PushUrlsCache: {...,action,urls,area,user_agent,at});
                      at = unix time in seconds, millisecond precision; CDN
                      entries add area and url_encode when the request gave
                      them, "fail":true marks tasks that will fail
  --seed N            seed for faults, task failures, TaskIds and RequestIds
                      (default: clock)
  --fail-rate P       answer HTTP 500/502/503 or InternalError with probability P
  --drop-rate P       close without answering with probability P (half of them
                      after the purge was accepted and logged)
  --garbage-rate P    answer a non-JSON 200 body with probability P
  --delay-ms N        wait N ms before answering each API request (real time)
  --fake-clock T      for tests: the simulator's clock starts at T (unix
                      seconds, or "now") and moves only when told by
                      POST /__clock {"set":T} or {"advance":SECONDS}; answers
                      {"now":T}. Drives the rate limit, --task-ms, quota days,
                      timestamps checks, log times and the Date header.
                      Without it /__clock is 404
  --watch-stdin       exit when stdin reaches end of file (for test harnesses)
  -h, --help          show this help

DescribePurgeTasks / DescribePushTasks: TaskId or StartTime is required;
StartTime and EndTime ("YYYY-MM-DD HH:MM:SS", Beijing time) are inclusive; a
Keyword starting with http:// or https:// matches the URL equal to it, any
other Keyword (a domain) the URLs containing it (any case); Limit 1..1000
(default 20), Offset from 0; newest tasks first.

Default credentials:
  SecretId  AKIDSIMULATOR00000000000000000000000
  SecretKey SimulatorSecretKeyForLuaEcdn0000
]]

local INTEGER_OPTS = { port = { 0, 65535 }, rate = { 0 }, batch = { 1 }, quota = { 0 }, ["path-batch"] = { 1 },
                       ["path-quota"] = { 0 }, ["push-batch"] = { 1 }, ["push-quota"] = { 0 }, ["url-max"] = { 1 },
                       ["task-ms"] = { 0 }, ["delay-ms"] = { 0 }, seed = {} }
local RATE_OPTS = { ["fail-rate"] = true, ["drop-rate"] = true, ["garbage-rate"] = true,
                    ["task-fail-rate"] = true }

local function split_pair(v, opt)
  local a, b = v:match("^([^:]+):(.+)$")
  if not a then return nil, opt .. " expects ID:VALUE" end
  return a, b
end

-- Parses command-line arguments into a config table, or nil, message.
-- Returns "help" when --help was asked.
function M.options(args)
  local cfg = { port = 0, rate = 20, rate_window = "sliding", batch = 1000, quota = 10000, path_quota = 100,
                push_batch = 500, push_quota = 1000, url_max = 1024, task_ms = 2000, task_fail_rate = 0,
                delay_ms = 0, fail_rate = 0, drop_rate = 0, garbage_rate = 0,
                secrets = nil, tokens = {}, migrated = {}, domains = nil }
  local token_list, migrated_list = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    if a == "-h" or name == "help" then return "help" end
    if not name then return nil, "unexpected argument: " .. a end
    local v = inline
    if name ~= "watch-stdin" and v == nil then
      i = i + 1
      v = args[i]
      if v == nil then return nil, "--" .. name .. " needs a value" end
    end
    local key = name:gsub("%-", "_")
    if name == "watch-stdin" then
      cfg.watch_stdin = true
    elseif INTEGER_OPTS[name] then
      local n = v:match("^%-?%d+$") and #v <= 16 and math.floor(tonumber(v))
      local lim = INTEGER_OPTS[name]
      if not n or (lim[1] and n < lim[1]) or (lim[2] and n > lim[2]) then
        return nil, "--" .. name .. " expects an integer" .. (lim[1] and " >= " .. lim[1] or "")
      end
      cfg[key] = n
    elseif RATE_OPTS[name] then
      local p = tonumber(v)
      if not p or p < 0 or p > 1 then return nil, "--" .. name .. " expects a probability between 0 and 1" end
      cfg[key] = p
    elseif name == "secret" then
      local id, secret = split_pair(v, "--secret")
      if not id then return nil, secret end
      cfg.secrets = cfg.secrets or {}
      cfg.secrets[id] = secret
    elseif name == "token" then
      local id, token = split_pair(v, "--token")
      if not id then return nil, token end
      token_list[#token_list + 1] = { id, token }
    elseif name == "domains" then
      cfg.domains = {}
      for d in v:gmatch("[^,%s]+") do cfg.domains[d:lower()] = true end
    elseif name == "migrated" then
      if v == "" then return nil, "--migrated expects a SecretId" end
      migrated_list[#migrated_list + 1] = v
    elseif name == "rate-window" then
      if v ~= "sliding" and v ~= "fixed" then return nil, "--rate-window expects sliding or fixed" end
      cfg.rate_window = v
    elseif name == "log" then
      cfg.log = v
    elseif name == "fake-clock" then
      local t = v == "now" and require("socket").gettime() or (v:match("^%d+%.?%d*$") and tonumber(v))
      if not t then return nil, "--fake-clock expects unix seconds or now" end
      cfg.fake_clock = t
    else
      return nil, "unknown option --" .. name
    end
    i = i + 1
  end
  cfg.secrets = cfg.secrets or { [M.DEFAULT_SECRET_ID] = M.DEFAULT_SECRET_KEY }
  for _, t in ipairs(token_list) do
    if not cfg.secrets[t[1]] then return nil, "--token " .. t[1] .. ": no --secret for this SecretId" end
    cfg.tokens[t[1]] = t[2]
  end
  for _, id in ipairs(migrated_list) do
    if not cfg.secrets[id] then return nil, "--migrated " .. id .. ": no --secret for this SecretId" end
    cfg.migrated[id] = true
  end
  if cfg.seed == nil then
    local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) -- differs between processes (ASLR)
    cfg.seed = math.floor((require("socket").gettime() * 1000000 + addr) % 9007199254740992)
  end
  return cfg
end

-- Starts serving with cfg (from options()); returns only on failure.
function M.run(cfg)
  local random = require "ecdn.sim.random"
  local faults = require("ecdn.sim.faults").new(cfg)
  local log
  if cfg.log then
    local err
    log, err = require("ecdn.sim.log").open(cfg.log)
    if not log then return nil, "cannot open log: " .. tostring(err) end
  end
  -- Ids use their own stream so fault draws stay aligned with request order.
  local service = require("ecdn.sim.service").new(cfg, random.new(cfg.seed + 0x5eed), log)
  return require("ecdn.sim.server").run(service, faults, { port = cfg.port, watch_stdin = cfg.watch_stdin,
                                                           log = log, fake_clock = cfg.fake_clock })
end

-- Command-line entry point (bin/ecdn-sim). Returns an exit status.
function M.main(args)
  local cfg, err = M.options(args)
  if cfg == "help" then
    io.stdout:write(M.USAGE)
    return 0
  end
  if not cfg then
    io.stderr:write("ecdn-sim: ", err, "\n(see ecdn-sim --help)\n")
    return 2
  end
  local ok
  ok, err = M.run(cfg)
  if not ok then
    io.stderr:write("ecdn-sim: ", tostring(err), "\n")
    return 1
  end
  return 0
end

return M
