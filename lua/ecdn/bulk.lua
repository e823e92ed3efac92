--- The bulk engine behind client:purge_all and client:wait: any number of
-- URLs in batches, several requests in flight (libcurl multi, driven from C)
-- under the client's rate limiter, retries with capped, fully jittered
-- exponential backoff, and exact accounting. A batch whose outcome is
-- unknown (sent, then no readable answer) is looked up with
-- DescribePurgeTasks before it is sent again, so no URL is purged twice
-- because of a fault.
local core = require "ecdn.core"
local decode = require "ecdn.decode"
local errors = require "ecdn.errors"
local limits = require "ecdn.limiter"
local request = require "ecdn.request"
local services = require "ecdn.services"
local times = require "ecdn.times"

local M = {}

local DEFAULTS = { rate = services.RATE_PER_SECOND, concurrency = 4, retries = 6, max_backoff = 8,
                   dedupe = true, quota_check = false }
local OPTION_TYPES = { flush_type = "string", batch = "number", rate = "number", concurrency = "number",
                       retries = "number",
                       max_backoff = "number", deadline = "number", dedupe = "boolean",
                       quota_check = "boolean", on_progress = "function",
                       lookup_settle = "number",
                       random = "function" } -- random: for tests, a function() -> [0, 1)
local PROGRESS_EVERY = 0.1
local BACKOFF_BASE = 0.25
local LOOKUP_SLACK = 5 -- seconds before the first send a lookup's window opens
-- A task whose CreateTime is this much or more before the first send (on the
-- service's clock, from the lookup answer's Date) is older than the batch:
-- Date, CreateTime and the local clock are whole seconds, so the send's
-- moment, so measured, is less than 1 s late and a task it made is less
-- than 1 s earlier still.
local CREATE_GRAIN = 2
local ISSUED_KEEP = 1024 -- TaskIds a client remembers it was given
local LOOKUP_DELAY = 0.5 -- seconds before an uncertain batch is first looked up (the service indexes it)
-- "Not applied" is believed only from a lookup started this long after the
-- batch's last send (option lookup_settle): the service may list a task a
-- moment after making it, and a batch sent again on an early "none" would be
-- purged twice.
local LOOKUP_SETTLE = 3

-- What differs between purging URLs and purging directories.
local KINDS = {
  urls = { fn = "purge_all", action = "PurgeUrlsCache", purge_type = "url", quota = "UrlPurge", what = "URL",
           max_batch = services.URLS_PER_REQUEST,
           body = function(list) return request.purge_urls(list) end },
  paths = { fn = "purge_paths_all", action = "PurgePathCache", purge_type = "path", quota = "PathPurge",
            what = "path", max_batch = services.PATHS_PER_REQUEST,
            body = function(list, opts) return request.purge_paths(list, opts.flush_type) end },
}

local function check_opts(opts, kind, max_batch)
  local fn = "ecdn.client:" .. kind.fn
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error(fn .. ": opts must be a table", 4) end
  if kind.purge_type == "path" and opts.flush_type ~= "flush" and opts.flush_type ~= "delete" then
    error(fn .. ": option 'flush_type' must be \"flush\" or \"delete\"", 4)
  end
  if kind.purge_type ~= "path" and opts.flush_type ~= nil then
    error(fn .. ": option 'flush_type' is for purge_paths_all", 4)
  end
  for k, v in pairs(opts) do
    local want = OPTION_TYPES[k]
    if not want then error(fn .. ": unknown option '" .. tostring(k) .. "'", 4) end
    if type(v) ~= want then
      error(fn .. ": option '" .. k .. "' must be a " .. want .. " (got " .. type(v) .. ")", 4)
    end
  end
  for _, k in ipairs{ "batch", "concurrency" } do
    local v = opts[k]
    if v ~= nil and (v < 1 or v ~= math.floor(v)) then
      error(fn .. ": option '" .. k .. "' must be a whole number >= 1", 4)
    end
  end
  if opts.batch and opts.batch > max_batch then
    error(fn .. ": option 'batch' must be at most " .. max_batch, 4)
  end
  if opts.concurrency and opts.concurrency > 64 then
    error(fn .. ": option 'concurrency' must be at most 64", 4)
  end
  if opts.retries and (opts.retries < 0 or opts.retries ~= math.floor(opts.retries) or opts.retries > 1000) then
    error(fn .. ": option 'retries' must be a whole number from 0 to 1000", 4)
  end
  if opts.rate ~= nil and (opts.rate < 0 or opts.rate ~= math.floor(opts.rate) or opts.rate == math.huge) then
    error(fn .. ": option 'rate' must be a whole number >= 0 (0: no limit of the job's own)", 4)
  end
  for _, k in ipairs{ "max_backoff", "deadline" } do
    local v = opts[k]
    if v ~= nil and (v ~= v or v < 0) then error(fn .. ": option '" .. k .. "' must be >= 0", 4) end
  end
  local settle = opts.lookup_settle
  if settle ~= nil and not (settle >= 0 and settle <= 60) then -- (NaN fails too)
    error(fn .. ": option 'lookup_settle' must be seconds from 0 to 60", 4)
  end
  return opts
end

local function day_limit(err)
  return err.kind == "api" and err.code:find("ExceedDayLimit$") ~= nil
end

local function rate_limited(err)
  return err.kind == "api" and err.code:find("^RequestLimitExceeded") ~= nil
end

-- Refused for the request's size, or for one of its items (its domain, its
-- length): a refused request was not applied, so its halves may go alone.
local ITEM_REFUSALS = { "ExceedBatchLimit$", "UrlExceedLength$", "DomainNotExists$", "HostNotExists$",
                        "WildcardNotAllowed$", "DomainUnauthorized$", "HostUnauthorized$", "DomainInvalidStatus$",
                        "HostInvalidStatus$", "HostIsNotOnline$" }
local function splittable(err)
  if err.kind ~= "api" then return false end
  for _, pat in ipairs(ITEM_REFUSALS) do
    if err.code:find(pat) then return true end
  end
  return false
end

-- "https://user@Host:8080/x" -> "host"
local function host_of(u)
  local authority = u:match("^%a[%w+.-]*://([^/?#]*)") or ""
  return (authority:gsub("^.*@", ""):gsub(":%d*$", ""):lower())
end

-- The parts a refused batch goes again in, or nil when it does not. Refused
-- for a domain: every URL of that host is refused alike, so by host (not
-- halved down to single URLs), and a batch of one host fails whole. Refused
-- for a URL or for its size: in halves.
local function split_refused(urls, err)
  if #urls < 2 or not splittable(err) then return nil end
  if err.code:find("Domain%a*$") or err.code:find("Host%a*$") then
    local groups, parts = {}, {}
    for _, u in ipairs(urls) do
      local h = host_of(u)
      local g = groups[h]
      if not g then
        g = {}
        groups[h] = g
        parts[#parts + 1] = g
      end
      g[#g + 1] = u
    end
    return #parts > 1 and parts or nil
  end
  local half = math.floor(#urls / 2)
  local first, second = {}, {}
  for i, u in ipairs(urls) do
    if i <= half then first[#first + 1] = u else second[#second + 1] = u end
  end
  return { first, second }
end

-- The length of the list of items: its largest positive integer key, or its
-- n (table.pack's) when larger, so that a hole anywhere (at #'s border too)
-- is counted as an item and nothing past a stale n is left out; nil when
-- that is too far past the items to be a list (a huge or infinite n too).
local function list_length(t)
  local max, count = 0, 0
  for k in pairs(t) do
    if type(k) == "number" and k >= 1 and k == math.floor(k) then
      count = count + 1
      if k > max then max = k end
    end
  end
  local n = rawget(t, "n")
  if type(n) == "number" and n >= 0 and n == math.floor(n) and n > max then max = n end
  if max > 2 * count + 64 then return nil end
  return max
end

-- Every later request would be refused the same way.
local function refused_credentials(err)
  return err.kind == "api" and err.code:find("^AuthFailure") ~= nil
end

-- The credentials themselves refused (not CAM refusing one action: a
-- lookup refused by CAM says nothing about the purges).
local function bad_credentials(err)
  return refused_credentials(err) and err.code ~= "AuthFailure.UnauthorizedOperation"
end

-- A copy of err with `fields` set and its message prefixed.
local function marked(err, prefix, fields)
  local copy = {}
  for k, v in pairs(err) do copy[k] = v end
  for k, v in pairs(fields) do copy[k] = v end
  copy.message = prefix .. (err.message or "")
  return errors.new(copy)
end

-- The error of URLs that never went out because the job stopped: the
-- stopping error, marked unsent.
local function unsent(err)
  return marked(err, "not sent: ", { sent = false })
end

-- The error of a batch given up while its outcome is unknown (sent, no
-- readable answer, no lookup settled it): its last error, marked so. Not
-- retryable: sending it again may purge it twice. lookup_error: why the
-- lookup could not settle it, if it was asked.
local function unknown_outcome(err, lookup_err)
  local e = marked(err, "outcome unknown: ", { sent = true, retryable = false, unknown = true })
  e.lookup_error = lookup_err
  return e
end

-- The error of a batch its lookup found not applied (sent, no answer, and
-- no task holds it), given up with that error: unknown = false says the
-- outcome is known after all (ecdn.errors.outcome_unknown).
local function not_applied(err)
  return marked(err, "not applied (no task holds it): ", { unknown = false })
end

--- issued(holder) -> holder.issued, made when missing: the record
-- remember() keeps (one table, shared by whatever holds it).
function M.issued(holder)
  local issued = holder.issued
  if not issued then
    issued = { set = {}, ring = {}, n = 0 }
    holder.issued = issued
  end
  return issued
end

--- remember(st, task_id): the client was given (or credited) this TaskId; a
-- later lookup never takes it for a batch whose answer was lost. The last
-- ISSUED_KEEP are kept.
function M.remember(st, task_id)
  local issued = M.issued(st)
  if issued.set[task_id] then return end
  local slot = issued.n % ISSUED_KEEP + 1
  issued.n = issued.n + 1
  local old = issued.ring[slot]
  if old then issued.set[old] = nil end
  issued.ring[slot], issued.set[task_id] = task_id, true
end

--- screen(items, dedupe, service [, kind_name]) -> valid, refused, deduped |
-- nil (keys too sparse to be a list): purge_all's local checks and dedupe,
-- before anything is sent (the CLI's --dry-run shows the same). valid: the
-- items that go out, in order; refused: { {err, urls = {item}}, ... } in
-- input order, a nil hole one of them; deduped: repeats skipped (a
-- repeated invalid item is refused once too).
function M.screen(items, dedupe, service, kind_name)
  local kind = KINDS[kind_name or "urls"]
  local count = list_length(items)
  if not count then return nil end
  local valid, refused, seen, deduped = {}, {}, {}, 0
  for i = 1, count do
    local u = items[i]
    if type(u) ~= "string" then
      refused[#refused + 1] = { err = decode.local_error({ problem = "not_string", reason = "is not a string",
                                                           index = i }, service, kind.what), urls = { u } }
    elseif dedupe and seen[u] then
      deduped = deduped + 1
    else
      if dedupe then seen[u] = true end
      local p = core.check_url(u)
      if p then
        p.index = i
        refused[#refused + 1] = { err = decode.local_error(p, service, kind.what), urls = { u } }
      else
        valid[#valid + 1] = u
      end
    end
  end
  return valid, refused, deduped
end

local function client_error(code, message, sent)
  return errors.new { code = code, message = message, kind = "client", retryable = false, sent = sent or false }
end

--- purge_all(c, st, urls, opts) -> report | nil, err. `c` is the client,
-- `st` its Lua state ({limiter, rate, window, service, clock, now, sleep, ...}).
function M.purge_all(c, st, urls, opts, kind_name)
  local kind = KINDS[kind_name or "urls"]
  local max_batch = kind.purge_type == "path" and services[st.service].paths_per_request or kind.max_batch
  opts = check_opts(opts, kind, max_batch)
  local now, sleep = st.now, st.sleep
  local wall = function() return (st.clock or os.time)() + st.clock_offset end -- the service's time
  local random = opts.random or math.random
  local concurrency = opts.concurrency or DEFAULTS.concurrency
  local max_retries = opts.retries or DEFAULTS.retries
  local max_backoff = opts.max_backoff or DEFAULTS.max_backoff
  local settle = opts.lookup_settle or LOOKUP_SETTLE
  local dedupe = opts.dedupe ~= false
  local t0 = now()
  local deadline = opts.deadline and t0 + opts.deadline
  -- The job's own `rate`, if any, on top of the client's limiter.
  local job_rate = opts.rate
  local limiter = (job_rate and job_rate ~= 0 and job_rate ~= st.rate)
    and limits.stacked(st.limiter, job_rate, st.window, now) or st.limiter

  local report = { ok = 0, failed = 0, duplicates = 0, deduped = 0, requests = 0, retries = 0, seconds = 0,
                   tasks = {}, errors = {} }
  -- count: input items (a nil hole in the input fails as one, though its list is empty).
  local function fail_urls(err, list, count)
    report.errors[#report.errors + 1] = { err = err, urls = list }
    report.failed = report.failed + (count or #list)
  end

  -- 1. Local checks and dedupe: what is left goes out in batches.
  local valid, refused, deduped = M.screen(urls, dedupe, st.service, kind_name)
  if not valid then
    error("ecdn.client:" .. kind.fn .. ": " .. (kind.purge_type == "path" and "paths" or "urls")
          .. " must be a list (its keys are too sparse)", 3)
  end
  for _, r in ipairs(refused) do fail_urls(r.err, r.urls, 1) end
  report.deduped = deduped
  local n = #valid
  -- With dedupe = false a URL may stand in several batches: a lookup must
  -- key on a URL that stands once, or it could find another batch's task.
  local repeats
  if not dedupe then
    repeats = {}
    for i = 1, n do repeats[valid[i]] = (repeats[valid[i]] or 0) + 1 end
  end
  local function lookup_key(b)
    for _, u in ipairs(b.urls) do
      if not repeats or repeats[u] == 1 then return u end
    end
  end
  -- TaskIds already in the report, never credited twice: task_id ->
  -- {batch, entry (its report.tasks entry), by_lookup}
  local credited = {}
  local total = n + report.failed

  -- 2. Quota: refuse a job larger than what is available, before sending anything.
  local batch_size = opts.batch or max_batch
  if opts.quota_check and n > 0 then
    local q, err = c:call("DescribePurgeQuota", {}) -- under the client's limiter
    report.requests = report.requests + 1
    if not q then return nil, err end
    local quota = q[kind.quota]
    if type(quota) == "table" and quota[1] then -- cdn: one entry per area; the smallest is the bound
      local least
      for _, e in ipairs(quota) do
        if type(e) == "table" and (not least or (e.Available or 0) < (least.Available or 0)) then least = e end
      end
      quota = least
    end
    if type(quota) ~= "table" or type(quota.Available) ~= "number" then
      return nil, client_error("ClientError.ParseJsonError",
        "DescribePurgeQuota answered no " .. kind.quota .. " quota")
    end
    if n > quota.Available then
      return nil, client_error("ClientError.QuotaExceeded", string.format(
        "the job has %d %ss but the daily quota has %d left (of %d); nothing was sent",
        n, kind.what, quota.Available, quota.Total or -1))
    end
    if not opts.batch and type(quota.Batch) == "number" and quota.Batch >= 1 then
      batch_size = math.min(quota.Batch, max_batch)
    end
  end

  -- 3. The loop. A batch: {urls, tries, first_mono, due, last_err}; an
  -- in-flight entry: {batch, lookup = bool}.
  local next_url = 1                 -- first URL not yet in a batch
  local ready = {}                   -- batches (retries and lookups) to start when `due`
  local inflight, active = {}, 0
  local stop_err                     -- day limit, deadline or interrupt: start nothing more
  local last_progress = -math.huge
  local done_urls = 0

  local progress_err -- what on_progress raised: re-raised once nothing is in flight
  local function progress(final)
    if not opts.on_progress or progress_err then return end
    local t = now()
    if not final and t - last_progress < PROGRESS_EVERY then return end
    last_progress = t
    local ok, e = pcall(opts.on_progress, { done = done_urls, failed = report.failed, total = total,
                                            requests = report.requests, retries = report.retries, elapsed = t - t0 })
    if not ok then
      progress_err = e
      stop_err = stop_err or client_error("ClientError.Interrupted", "on_progress raised: " .. tostring(e))
    end
  end

  local function backoff(tries)
    local cap = math.min(max_backoff, BACKOFF_BASE * 2 ^ (tries - 1))
    return random() * cap
  end

  -- false (nothing credited) for a TaskId already in the report.
  local function succeed(b, task_id, request_id, by_lookup)
    if credited[task_id] then return false end
    local entry = { task_id = task_id, request_id = request_id, urls = b.urls }
    credited[task_id] = { batch = b, entry = entry, by_lookup = by_lookup }
    M.remember(st, task_id)
    report.tasks[#report.tasks + 1] = entry
    report.ok = report.ok + #b.urls
    done_urls = done_urls + #b.urls
    return true
  end

  local function give_up(b, err)
    fail_urls(err, b.urls)
  end

  local function schedule(b, lookup)
    b.lookup = lookup
    b.verify, b.candidates = nil, nil
    b.due = now() + (lookup and LOOKUP_DELAY or backoff(b.tries))
    ready[#ready + 1] = b
  end

  local function on_purge(b, raw, failure)
    st.observe(raw) -- the service's clock, for lookup windows
    local res, err = decode.task(raw, failure)
    if res then
      if (res.attempts or 1) >= 2 then report.duplicates = report.duplicates + #b.urls end
      if succeed(b, res.task_id, res.request_id) then return end
      local prev = credited[res.task_id]
      if prev.by_lookup and prev.batch ~= b then
        -- A lookup gave this task to another batch of the same URLs (dedupe
        -- = false), but the service says it is this one's: it is, and the
        -- other batch is looked up again (its own task is another).
        local other = prev.batch
        prev.batch, prev.by_lookup = b, false
        prev.entry.urls, prev.entry.request_id = b.urls, res.request_id
        return schedule(other, true)
      end
      -- The service answered a TaskId the report already holds, credited
      -- by an answer too: never credited twice, nor called failed.
      return give_up(b, unknown_outcome(errors.new { code = "ClientError.ParseJsonError", kind = "http",
        status = raw.status, request_id = res.request_id,
        message = "the service answered TaskId " .. res.task_id .. ", already credited to another batch" }))
    end
    b.last_err = err
    -- A clock the service says is off, or an account moved to CDN ("auto"):
    -- corrected once per batch, and sent again without counting a retry.
    b.corrections = b.corrections or {}
    if st.correct(c, err, raw, b.corrections) then
      b.tries = b.tries - 1
      b.due = now()
      ready[#ready + 1] = b
      return
    end
    if day_limit(err) or refused_credentials(err) then
      stop_err = stop_err or err
      return give_up(b, err)
    end
    local parts = split_refused(b.urls, err)
    if parts then
      -- Each part goes alone: what the service refuses is narrowed down to
      -- its URLs, the rest is purged. Too many a request: later batches are
      -- no larger than a half either.
      if err.code:find("ExceedBatchLimit$") then batch_size = math.min(batch_size, #parts[1]) end
      for _, list in ipairs(parts) do ready[#ready + 1] = { urls = list, tries = 0, due = now() } end
      return
    end
    if rate_limited(err) then limiter:penalize(1) end
    if errors.outcome_unknown(err) then return schedule(b, true) end -- look before sending again
    if err.retryable and b.tries <= max_retries then return schedule(b, false) end
    give_up(b, err)
  end

  -- Not applied after all: it may go again.
  local function not_found(b)
    if b.looked_at - b.sent_mono < settle then
      -- Too soon to believe: the same lookup once more, when it is not.
      schedule(b, true)
      b.due = b.sent_mono + settle
      return
    end
    b.last_err = not_applied(b.last_err)
    if not stop_err and b.tries <= max_retries then return schedule(b, false) end
    return give_up(b, b.last_err)
  end

  -- dedupe = false: the next task that may be this batch's is asked for by
  -- TaskId; none left (each another batch's, or not these URLs): not applied.
  local function verify_next(b)
    local cands = b.candidates
    while cands and #cands > 0 do
      local id = table.remove(cands, 1)
      if not credited[id] then
        b.verify = id
        b.due = now()
        ready[#ready + 1] = b
        return
      end
    end
    b.candidates = nil
    return not_found(b)
  end

  local function on_lookup(b, raw, failure)
    local clock_known = st.observe(raw) -- true: this answer's Date gave the service's clock
    local resp, err = decode.outcome(raw, failure)
    -- (Compared with the offset the window was drawn on, not the one before
    -- this answer: another lookup's answer may have corrected it meanwhile.)
    if resp and not b.verify and math.abs(st.clock_offset - b.window_offset) > LOOKUP_SLACK / 2
       and not b.relooked then
      -- The window was drawn on a clock the answer shows to be off (the
      -- first send's answer never came): look again on the service's time.
      b.relooked = true
      b.due = now()
      ready[#ready + 1] = b
      return
    end
    if resp then
      local logs = type(resp.PurgeLogs) == "table" and resp.PurgeLogs or {}
      if b.verify then
        -- A second look (dedupe = false, no URL of the batch stands once):
        -- the task holds exactly this batch's URLs, no more, no fewer?
        local want, n_found, n_task = {}, 0, 0
        for _, u in ipairs(b.urls) do want[u] = (want[u] or 0) + 1 end
        for _, e in ipairs(logs) do
          if type(e) == "table" and e.TaskId == b.verify then
            n_task = n_task + 1
            if (want[e.Url] or 0) > 0 then
              want[e.Url] = want[e.Url] - 1
              n_found = n_found + 1
            end
          end
        end
        local task_id = b.verify
        b.verify = nil
        -- Another batch's lookup may have credited it meanwhile (same URLs): then it is not this one's.
        if n_found == #b.urls and n_task == #b.urls and succeed(b, task_id, nil, true) then return end
        return verify_next(b)
      end
      local key = lookup_key(b) or b.urls[1]
      local found, count, candidates, listed = nil, 0, {}, {}
      -- Not the batch's: a task made before its first send (judged only on
      -- the service's own clock), or one the client was given earlier.
      local sent_at = clock_known and wall() - (now() - b.first_mono)
      local issued = st.issued and st.issued.set or {}
      for _, e in ipairs(logs) do
        local id = type(e) == "table" and e.Url == key and decode.clean(e.TaskId, decode.MAX_ID)
        local created = id and sent_at and times.from_beijing(e.CreateTime)
        if id and not credited[id] and not issued[id] and not (created and created <= sent_at - CREATE_GRAIN) then
          count = count + 1
          found = found or id
          if not listed[id] then
            listed[id] = true
            candidates[#candidates + 1] = id
          end
        end
      end
      if not found then return not_found(b) end
      if not lookup_key(b) then
        -- Every URL of the batch stands in another batch too: each task
        -- holding the key may be another batch's, so look at each in turn.
        b.candidates = candidates
        return verify_next(b)
      end
      -- Applied after all: done, under the task the service made.
      if count >= 2 then report.duplicates = report.duplicates + #b.urls end
      return succeed(b, found, nil, true)
    end
    b.corrections = b.corrections or {}
    if st.correct(c, err, raw, b.corrections) then -- ("auto": the lookup goes to CDN too)
      b.due = now()
      ready[#ready + 1] = b
      return
    end
    if rate_limited(err) then limiter:penalize(1) end
    -- The lookup itself failed: the outcome is still unknown. Ask again
    -- later (a budget of its own, as large as the sends'); never send blind.
    -- Refused for good (CAM, credentials): asking again is refused again.
    -- Refused credentials stop the job; CAM refusing DescribePurgeTasks
    -- only leaves this batch's outcome unknown.
    if bad_credentials(err) then stop_err = stop_err or err end
    b.failed_lookups = (b.failed_lookups or 0) + 1
    if err.retryable and b.failed_lookups <= max_retries then
      b.due = now() + backoff(b.failed_lookups)
      ready[#ready + 1] = b
      return
    end
    give_up(b, unknown_outcome(b.last_err, err))
  end

  local function finish(entry, raw, failure)
    active = active - 1
    if entry.lookup then on_lookup(entry.batch, raw, failure) else on_purge(entry.batch, raw, failure) end
  end

  local function start(b)
    local action, body, resend
    if b.lookup then
      action, resend = "DescribePurgeTasks", true
      if b.verify then
        body = request.action { TaskId = b.verify, Limit = 1000 }
      else
        -- The window, in the service's time: from just before the first
        -- send (measured on the monotonic clock, so no later clock
        -- correction moves it) to a minute from now.
        local service_now = wall()
        b.window_offset = st.clock_offset
        b.looked_at = now()
        body = request.action { PurgeType = kind.purge_type, Keyword = lookup_key(b) or b.urls[1],
                                StartTime = times.beijing(service_now - (now() - b.first_mono) - LOOKUP_SLACK),
                                EndTime = times.beijing(service_now + 60), Limit = 100 }
      end
    else
      action, resend = kind.action, false
      body = assert(kind.body(b.urls, opts)) -- checked one by one above
      if b.tries > 0 then report.retries = report.retries + 1 end
      b.tries = b.tries + 1
      b.first_mono = b.first_mono or now()
      b.sent_mono = now()
    end
    report.requests = report.requests + 1
    local fresh, cred_err = st.refresh(c) -- rotate credentials that are about to expire
    if not fresh then
      stop_err = stop_err or cred_err
      -- (a looked-up batch may have been applied)
      return give_up(b, b.lookup and unknown_outcome(b.last_err, cred_err) or cred_err)
    end
    local id, failure = c:_start(action, body, st.timestamp(), resend)
    if not id then -- refused before anything went out
      if b.lookup then return on_lookup(b, nil, failure) end
      return on_purge(b, nil, failure)
    end
    inflight[id] = { batch = b, lookup = b.lookup }
    active = active + 1
  end

  -- The next batch that may start now: due retries and lookups first, then new URLs.
  -- (After a stop, only lookups.)
  local function next_ready(t)
    local best, bi
    for i, b in ipairs(ready) do
      if b.due <= t and (not best or b.due < best.due) and (b.lookup or not stop_err) then best, bi = b, i end
    end
    if best then
      table.remove(ready, bi)
      return best
    end
    if next_url <= n and not stop_err then
      local last = math.min(n, next_url + batch_size - 1)
      local list = {}
      for i = next_url, last do list[#list + 1] = valid[i] end
      next_url = last + 1
      return { urls = list, tries = 0 }
    end
  end

  local function stop(err)
    stop_err = stop_err or err
  end

  while true do
    local t = now()
    if not stop_err and deadline and t >= deadline then
      stop(client_error("ClientError.Deadline", "the job's deadline passed before this batch was sent"))
    end
    if not stop_err and core.interrupted() then
      stop(client_error("ClientError.Interrupted", "interrupted before this batch was sent"))
    end
    if stop_err then
      -- Nothing new goes out; what waits to be sent again ends with its last
      -- error. A batch that may have been applied is still looked up (never
      -- sent again), unless the job was interrupted: then it ends unknown.
      local interrupted, lookups = stop_err.code == "ClientError.Interrupted", {}
      for _, b in ipairs(ready) do
        if b.lookup and not interrupted then
          lookups[#lookups + 1] = b
        elseif b.lookup then
          give_up(b, unknown_outcome(b.last_err, nil))
        else
          give_up(b, b.last_err or (stop_err.sent and unsent(stop_err) or stop_err))
        end
      end
      ready = lookups
      if next_url <= n then
        local list = {}
        for i = next_url, n do list[#list + 1] = valid[i] end
        next_url = n + 1
        give_up({ urls = list }, stop_err.sent and unsent(stop_err) or stop_err)
      end
    end
    local limited_until
    while active < concurrency do
      local b = next_ready(t)
      if not b then break end
      local wait = limiter:take()
      if wait > 0 then
        -- Not yet: put it back and come back when the limiter allows.
        b.due = b.due or t
        table.insert(ready, 1, b)
        limited_until = t + wait
        break
      end
      start(b)
      t = now()
    end
    if active == 0 and #ready == 0 and (next_url > n or stop_err) then break end
    -- Wake for the next thing that can start: a due batch once a slot and the
    -- limiter allow it; otherwise for an answer (or the progress tick).
    local wake = math.huge
    if active < concurrency then
      for _, b in ipairs(ready) do wake = math.min(wake, b.due) end
      if next_url <= n and not stop_err then wake = math.min(wake, t) end
      if limited_until then wake = math.max(wake, limited_until) end
    end
    if deadline and not stop_err then wake = math.min(wake, deadline) end
    local timeout = math.max(0, math.min(wake - now(), PROGRESS_EVERY))
    if active > 0 then
      for _, d in ipairs(c:_wait(timeout)) do
        local entry = inflight[d.id]
        inflight[d.id] = nil
        if entry then finish(entry, d.raw, d.failure) end
      end
    elseif timeout > 0 then
      sleep(timeout)
    end
    progress(false)
  end
  report.seconds = now() - t0
  progress(true)
  if progress_err ~= nil then error(progress_err, 0) end -- nothing is in flight any more
  -- Refused credentials before anything was purged: nothing could be sent at
  -- all (every error is the refusal itself, or a batch never sent).
  if report.ok == 0 and stop_err and refused_credentials(stop_err) then
    for _, e in ipairs(report.errors) do
      if e.err.sent and not refused_credentials(e.err) then return report end
    end
    return nil, stop_err
  end
  return report
end

--- wait(c, st, task_ids, opts) -> { [task_id] = "done"|"fail"|"process"|"unknown" }
-- Polls DescribePurgeTasks under the client's limiter until every task is
-- done or failed, or opts.timeout (seconds, default 300) passes.
function M.wait(c, st, task_ids, opts)
  opts = opts or {}
  for _, k in ipairs { "interval", "timeout" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0) then
      error("ecdn.client:wait: option '" .. k .. "' must be seconds >= 0", 4)
    end
  end
  local interval = opts.interval or 5
  local stop_at = st.now() + (opts.timeout or 300)
  local fatal
  local status, open = {}, {}
  for _, id in ipairs(task_ids) do
    status[id] = "unknown"
    open[#open + 1] = id
  end
  while #open > 0 do
    local still = {}
    for _, id in ipairs(open) do
      if core.interrupted() then break end
      local resp, err = c:call("DescribePurgeTasks", { TaskId = id, Limit = 1000 })
      if err and not err.retryable then fatal = true end -- asking again would be refused again
      local logs = resp and type(resp.PurgeLogs) == "table" and resp.PurgeLogs or nil
      if logs and #logs > 0 then
        local s = "done"
        for _, e in ipairs(logs) do
          local es = type(e) == "table" and e.Status
          if es == "fail" then s = "fail" break end
          if es ~= "done" then s = "process" end
        end
        status[id] = s
      end
      if status[id] ~= "done" and status[id] ~= "fail" then still[#still + 1] = id end
    end
    open = still
    if #open == 0 or fatal or st.now() + interval > stop_at or core.interrupted() then break end
    if not st.sleep(interval) then break end -- Ctrl-C (catch_interrupts) ends the wait
  end
  return status
end

return M
