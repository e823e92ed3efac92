-- The purge service itself: authentication (TC3 or V1), routing by
-- service/version/action, rate limit, migrated accounts, the documented purge
-- and push rules, daily quotas, tasks and the log. handle() takes a parsed
-- request and returns the JSON text of the answer body.
local cjson = require "cjson"
local auth = require "ecdn.sim.auth"
local form = require "ecdn.sim.form"
local json = require "ecdn.sim.json"
local random = require "ecdn.sim.random"

local M = {}
M.__index = M

local obj, array = json.obj, json.array

-- Per-product versions, actions (with their parameters) and error names.
local SERVICES = {
  ecdn = {
    version = "2019-10-12",
    actions = {
      PurgeUrlsCache = { "Urls" },
      PurgePathCache = { "Paths", "FlushType" },
      DescribePurgeTasks = { "PurgeType", "StartTime", "EndTime", "TaskId", "Offset", "Limit", "Keyword", "Status" },
      DescribePurgeQuota = {},
    },
    path_batch = 20,
    areas = false, -- quota answers are single objects, no Area parameter
    errors = {
      url_batch = "LimitExceeded.EcdnPurgeUrlExceedBatchLimit",
      url_day = "LimitExceeded.EcdnPurgeUrlExceedDayLimit",
      path_batch = "LimitExceeded.EcdnPurgePathExceedBatchLimit",
      path_day = "LimitExceeded.EcdnPurgePathExceedDayLimit",
      too_long = "InvalidParameter.EcdnUrlExceedLength",
      wildcard = "InvalidParameter.EcdnPurgeWildcardNotAllowed",
      param = "InvalidParameter.EcdnParamError",
      domain = "ResourceNotFound.EcdnDomainNotExists",
    },
  },
  cdn = {
    version = "2018-06-06",
    actions = {
      PurgeUrlsCache = { "Urls", "Area", "UrlEncode" },
      PurgePathCache = { "Paths", "FlushType", "UrlEncode", "Area" },
      DescribePurgeTasks = { "PurgeType", "StartTime", "EndTime", "TaskId", "Offset", "Limit", "Keyword", "Status",
                             "Area" },
      DescribePurgeQuota = {},
      -- Prefetch exists only in CDN (parameters and response fields from the
      -- TCCLI API description, tccli/services/cdn/v20180606/api.json).
      PushUrlsCache = { "Urls", "UserAgent", "Area", "Layer", "ParseM3U8", "DisableRange", "Headers", "UrlEncode" },
      DescribePushTasks = { "StartTime", "EndTime", "TaskId", "Keyword", "Offset", "Limit", "Area", "Status" },
      DescribePushQuota = {},
    },
    path_batch = 500,
    areas = { "mainland", "overseas" },
    errors = {
      url_batch = "LimitExceeded.CdnPurgeUrlExceedBatchLimit",
      url_day = "LimitExceeded.CdnPurgeUrlExceedDayLimit",
      path_batch = "LimitExceeded.CdnPurgePathExceedBatchLimit",
      path_day = "LimitExceeded.CdnPurgePathExceedDayLimit",
      too_long = "InvalidParameter.CdnUrlExceedLength",
      wildcard = "InvalidParameter.CdnPurgeWildcardNotAllowed",
      param = "InvalidParameter.CdnParamError",
      domain = "ResourceNotFound.CdnHostNotExists",
      -- push codes: the Go SDK's cdn/v20180606/errors.go
      push_batch = "LimitExceeded.CdnPushExceedBatchLimit",
      push_day = "LimitExceeded.CdnPushExceedDayLimit",
      push_wildcard = "InvalidParameter.CdnPushWildcardNotAllowed",
    },
  },
}
M.SERVICES = SERVICES

local BEIJING = 8 * 3600          -- daily quotas and task times follow Beijing time
local MAX_TASK_URLS = 200000      -- URLs/paths of past tasks kept per SecretId, service and kind
local V1_MAX_BODY = 1024 * 1024   -- POST with signature V1: at most 1 MB (TC3: 10 MB, in the server)
local GET_MAX_QUERY = 32 * 1024   -- GET: at most 32 KB
local MIGRATED = "UnauthorizedOperation.EcdnMigratedCdn"

local SERVICE_OF_VERSION = {}     -- "2019-10-12" -> "ecdn", ... (V1 requests to a Host naming no product)
for name, s in pairs(SERVICES) do SERVICE_OF_VERSION[s.version] = name end

-- An API error; raised with error() inside handlers, caught in handle().
local function api_error(code, message)
  error({ api = true, code = code, message = message }, 0)
end

-- Text of a client value for an error message: valid UTF-8 (other bytes
-- become "?"), at most 120 characters.
local function clip(s)
  if not utf8.len(s) then s = s:gsub("[\128-\255]", "?") end
  local cut = utf8.offset(s, 121)
  return cut and s:sub(1, cut - 1) .. "..." or s
end

-- cfg: see ecdn.sim.options(); rng: ecdn.sim.random; log: ecdn.sim.log or nil.
function M.new(cfg, rng, log)
  return setmetatable({
    cfg = cfg, rng = rng, log = log,
    -- task failures use their own stream: ids and faults stay as they were
    task_rng = random.new((math.tointeger(cfg.seed) or 0) ~ 0x7a5cfa11),
    windows = {},   -- SecretId -> sliding: {first, last, [i] = accepted time}; fixed: {second, count}
    used = {},      -- "id|service|kind|area|day" -> count
    tasks = {},     -- "id|service|purge" or "id|service|push" -> array of records
    id_second = 0, ids_this_second = {}, -- TaskIds start with the second: unique within it
    counts = { purged_urls = 0, purged_paths = 0, pushed_urls = 0 },
  }, M)
end

local day_sec, day_text -- os.date is slow: at most once per second
local function beijing_day(t)
  local sec = math.floor(t)
  if sec ~= day_sec then day_sec, day_text = sec, os.date("!%Y-%m-%d", sec + BEIJING) end
  return day_text
end

local function beijing_time(t)
  return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t) + BEIJING)
end
M.beijing_time = beijing_time

-- "2018-08-08 00:00:00" (Beijing) -> unix seconds, or nil.
local function parse_time(s)
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)$")
  if not y then return nil end
  y, mo, d, h, mi, se = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or se > 59 then return nil end
  -- days from civil (proleptic Gregorian), UTC
  local yy = mo <= 2 and y - 1 or y
  local era = yy // 400
  local yoe = yy - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + h * 3600 + mi * 60 + se - BEIJING
end
M.parse_time = parse_time

function M:new_task_id(now)
  local sec = math.floor(now)
  if sec ~= self.id_second then self.id_second, self.ids_this_second = sec, {} end
  local id
  repeat
    id = string.format("%d-%s", sec, self.rng:alnum(8))
  until not self.ids_this_second[id]
  self.ids_this_second[id] = true
  return id
end

---------------------------------------------------------------------------
-- Parameter checks

local known_sets = setmetatable({}, { __mode = "k" }) -- parameter list -> set

local function check_known(params, allowed)
  local ok = known_sets[allowed]
  if not ok then
    ok = {}
    for _, name in ipairs(allowed) do ok[name] = true end
    known_sets[allowed] = ok
  end
  for k in pairs(params) do
    if not ok[k] then
      api_error("UnknownParameter", "The parameter `" .. clip(tostring(k)) .. "` is not recognized.")
    end
  end
end

local function bad_type(name)
  api_error("InvalidParameter", "The value type of parameter `" .. name .. "` is not valid.")
end

local function opt_string(params, name)
  local v = params[name]
  if v == nil then return nil end
  if type(v) ~= "string" then bad_type(name) end
  return v
end

local function opt_integer(params, name)
  local v = params[name]
  if v == nil then return nil end
  v = type(v) == "number" and math.tointeger(v)
  if not v then bad_type(name) end
  return v
end

local function opt_boolean(params, name)
  local v = params[name]
  if v ~= nil and type(v) ~= "boolean" then bad_type(name) end
  return v
end

local function string_list(params, name)
  local v = params[name]
  if v == nil then
    api_error("MissingParameter", "The request is missing a required parameter `" .. name .. "`.")
  end
  if type(v) ~= "table" then bad_type(name) end
  -- cjson gives JSON arrays as sequences and objects as string-keyed tables.
  local n = #v
  if n == 0 and next(v) ~= nil then bad_type(name) end
  for i = 1, n do
    if type(v[i]) ~= "string" then bad_type(name) end
  end
  return v
end

-- The CDN Area of a purge or push (ECDN has none: "mainland"), and whether
-- the request named it. Omitted = the domain's own region; domains here are
-- mainland. global_ok: the action also takes "global" (PushUrlsCache).
local function area_of(s, params, global_ok)
  if not s.areas then return "mainland", false end
  local area = opt_string(params, "Area")
  if area == nil then return "mainland", false end
  if area ~= "mainland" and area ~= "overseas" and not (global_ok and area == "global") then
    api_error(s.errors.param, global_ok and "Area must be `mainland`, `overseas` or `global`."
                                         or "Area must be `mainland` or `overseas`.")
  end
  return area, true
end

-- Applies the documented per-URL rules; returns nothing or raises.
function M:check_url(s, u, i, what, wildcard_code)
  local e = s.errors
  if not utf8.len(u) or u:find("[%z\1-\31\127]") then
    api_error(e.param, string.format("%s %d is not valid UTF-8 text or holds control characters.", what, i))
  end
  if #u > self.cfg.url_max then
    api_error(e.too_long, string.format("%s %d is %d bytes long; the limit is %d.", what, i, #u, self.cfg.url_max))
  end
  local scheme, host = u:match("^(%a+)://([^/?#]*)")
  if scheme ~= "http" and scheme ~= "https" then
    scheme = scheme and scheme:lower()
    if scheme ~= "http" and scheme ~= "https" then
      api_error(e.param, string.format("%s `%s` must start with http:// or https://.", what, clip(u)))
    end
  end
  if host:find("[@:%u]") then -- user info, port or capitals: reduce to the bare, lower-case host
    host = host:match("[^@]*$"):gsub(":%d*$", ""):lower()
  end
  if host == "" then api_error(e.param, string.format("%s `%s` has no host.", what, clip(u))) end
  if host:find("*", 1, true) then
    api_error(wildcard_code or e.wildcard, string.format("%s `%s`: wildcard domains are not allowed.", what,
                                                         clip(u)))
  end
  if self.cfg.domains and not self.cfg.domains[host] then
    api_error(e.domain, string.format("The domain `%s` does not exist in this account.", clip(host)))
  end
end

-- Reserves n units of the day's quota or raises the product's day-limit error.
function M:take_quota(id, service, kind, area, n, limit, code, now)
  local key = table.concat({ id, service, kind, area, beijing_day(now) }, "|")
  local used = self.used[key] or 0
  if used + n > limit then
    api_error(code, string.format("Daily %s purge limit %d exceeded: %d used today, %d requested.",
                                  kind, limit, used, n))
  end
  self.used[key] = used + n
end

function M:available(id, service, kind, area, limit, now)
  local key = table.concat({ id, service, kind, area, beijing_day(now) }, "|")
  return math.max(0, limit - (self.used[key] or 0))
end

-- Remembers a task (one record per request; its URL list is shared, not
-- copied); book = "purge" or "push". The oldest tasks are forgotten past
-- MAX_TASK_URLS URLs. Returns the record.
function M:record(id, service, book, task_id, items, purge_type, flush_type, area, now)
  local key = id .. "|" .. service .. "|" .. book
  local list = self.tasks[key]
  if not list then
    list = { first = 1, last = 0, urls = 0 }
    self.tasks[key] = list
  end
  list.last = list.last + 1
  -- One draw per task, whatever the rate: the same seed fails the same tasks.
  local fails = self.task_rng:float() < (self.cfg.task_fail_rate or 0)
  local t = { task_id = task_id, urls = items, purge_type = purge_type, flush_type = flush_type,
              area = area, created = now, fails = fails }
  list[list.last] = t
  list.urls = list.urls + #items
  while list.urls > MAX_TASK_URLS and list.first < list.last do
    list.urls = list.urls - #list[list.first].urls
    list[list.first] = nil
    list.first = list.first + 1
  end
  return t
end

-- A task's status at time now: "process" for --task-ms, then "done" or "fail".
function M:status(t, now)
  if (now - t.created) * 1000 < self.cfg.task_ms then return "process" end
  return t.fails and "fail" or "done"
end

---------------------------------------------------------------------------
-- Actions: each returns the Response fields (before RequestId).

local actions = {}

-- Appends a field to an object made by obj().
local function add(entry, key, value)
  local keys = json.keys(entry)
  keys[#keys + 1] = key
  entry[key] = value
  return entry
end

-- A log entry's last fields: area and url_encode when the request gave them
-- (CDN), fail when the task will fail, then at.
local function finish_entry(entry, p, task, at)
  if p.area_given then add(entry, "area", p.area) end
  if p.url_encode ~= nil then add(entry, "url_encode", p.url_encode) end
  if task.fails then add(entry, "fail", true) end
  return add(entry, "at", at)
end

-- What both purge actions do once their own parameters are read: batch
-- limit, per-item checks, quota, task, counters and the log line (written
-- and flushed before the answer).
local function accept_purge(self, s, who, req, p)
  local items = p.items
  if #items == 0 then api_error(s.errors.param, p.label .. "s must not be empty.") end
  if #items > p.batch then
    api_error(p.batch_code, string.format("%d %s in one request; the limit is %d.", #items, p.noun, p.batch))
  end
  for i, u in ipairs(items) do self:check_url(s, u, i, p.label) end
  self:take_quota(who.secret_id, who.service, p.kind, p.area, #items, p.quota, p.day_code, req.now)
  local task_id = self:new_task_id(req.now)
  local task = self:record(who.secret_id, who.service, "purge", task_id, items, p.kind,
                           p.flush or "delete", p.area, req.now)
  local counter = "purged_" .. p.kind .. "s"
  self.counts[counter] = self.counts[counter] + #items
  if self.log then
    local entry
    if p.kind == "url" then
      entry = obj("task_id", task_id, "request_id", req.request_id, "secret_id", who.secret_id,
                  "service", who.service, "urls", array(items))
    else
      entry = obj("task_id", task_id, "request_id", req.request_id, "secret_id", who.secret_id,
                  "service", who.service, "action", "PurgePathCache", "paths", array(items),
                  "flush_type", p.flush)
    end
    self.log:write(finish_entry(entry, p, task, req.at))
  end
  return obj("TaskId", task_id)
end

function actions.PurgeUrlsCache(self, s, who, params, req)
  local cfg = self.cfg
  local urls = string_list(params, "Urls")
  local area, given = area_of(s, params)
  return accept_purge(self, s, who, req, {
    kind = "url", label = "Url", noun = "URLs", items = urls, area = area, area_given = given,
    url_encode = opt_boolean(params, "UrlEncode"),
    batch = cfg.batch, batch_code = s.errors.url_batch, quota = cfg.quota, day_code = s.errors.url_day,
  })
end

function actions.PurgePathCache(self, s, who, params, req)
  local cfg = self.cfg
  local paths = string_list(params, "Paths")
  local flush = params.FlushType
  if flush == nil then
    api_error("MissingParameter", "The request is missing a required parameter `FlushType`.")
  end
  if type(flush) ~= "string" then bad_type("FlushType") end
  if flush ~= "flush" and flush ~= "delete" then
    api_error(s.errors.param, "FlushType must be `flush` or `delete`.")
  end
  local area, given = area_of(s, params)
  return accept_purge(self, s, who, req, {
    kind = "path", label = "Path", noun = "paths", items = paths, area = area, area_given = given, flush = flush,
    url_encode = opt_boolean(params, "UrlEncode"),
    batch = cfg.path_batch or s.path_batch, batch_code = s.errors.path_batch,
    quota = cfg.path_quota, day_code = s.errors.path_day,
  })
end

-- PushUrlsCache (CDN only): Urls (<= --push-batch), Area mainland (default) |
-- overseas | global (uses both areas' quota), UserAgent (default TencentCdn),
-- Layer "middle", ParseM3U8, DisableRange, UrlEncode (booleans), Headers
-- (<= 20 {Name <= 128 B, Value <= 1024 B}).
function actions.PushUrlsCache(self, s, who, params, req)
  local cfg, e = self.cfg, s.errors
  local urls = string_list(params, "Urls")
  local area = area_of(s, params, true)
  local agent = opt_string(params, "UserAgent") or "TencentCdn"
  local layer = opt_string(params, "Layer")
  if layer and layer ~= "middle" then api_error(e.param, "Layer must be `middle`.") end
  opt_boolean(params, "ParseM3U8")
  opt_boolean(params, "DisableRange")
  local url_encode = opt_boolean(params, "UrlEncode")
  local headers = params.Headers
  if headers ~= nil then
    if type(headers) ~= "table" or (#headers == 0 and next(headers) ~= nil) then bad_type("Headers") end
    if #headers > 20 then api_error(e.param, "At most 20 Headers.") end
    for _, hd in ipairs(headers) do
      if type(hd) ~= "table" or type(hd.Name) ~= "string" or type(hd.Value) ~= "string" then bad_type("Headers") end
      if hd.Name == "" or #hd.Name > 128 or #hd.Value > 1024 then
        api_error(e.param, "A header's Name is 1 to 128 bytes, its Value at most 1024 bytes.")
      end
    end
  end
  if #urls == 0 then api_error(e.param, "Urls must not be empty.") end
  if #urls > cfg.push_batch then
    api_error(e.push_batch, string.format("%d URLs in one request; the limit is %d.", #urls, cfg.push_batch))
  end
  for i, u in ipairs(urls) do self:check_url(s, u, i, "Url", e.push_wildcard) end
  local areas = area == "global" and { "mainland", "overseas" } or { area }
  for _, a in ipairs(areas) do -- all or nothing: check every area before taking any
    local left = self:available(who.secret_id, who.service, "push", a, cfg.push_quota, req.now)
    if left < #urls then
      api_error(e.push_day, string.format("Daily push limit %d exceeded in %s: %d left today, %d requested.",
                                          cfg.push_quota, a, left, #urls))
    end
  end
  for _, a in ipairs(areas) do
    self:take_quota(who.secret_id, who.service, "push", a, #urls, cfg.push_quota, e.push_day, req.now)
  end
  local task_id = self:new_task_id(req.now)
  local task = self:record(who.secret_id, who.service, "push", task_id, urls, nil, nil, area, req.now)
  self.counts.pushed_urls = self.counts.pushed_urls + #urls
  if self.log then
    local entry = obj("task_id", task_id, "request_id", req.request_id, "secret_id", who.secret_id,
                      "service", who.service, "action", "PushUrlsCache", "urls", array(urls), "area", area,
                      "user_agent", agent)
    self.log:write(finish_entry(entry, { url_encode = url_encode }, task, req.at))
  end
  return obj("TaskId", task_id)
end

local STATUSES = { fail = true, done = true, process = true }
local PUSH_STATUSES = { fail = true, done = true, process = true, invalid = true }

-- The filters both Describe*Tasks actions share; returns a table with
-- match(task) and match_url(url), offset and limit.
local function task_query(self, s, params, req, statuses)
  local e = s.errors
  local start_s, end_s = opt_string(params, "StartTime"), opt_string(params, "EndTime")
  local task_id, keyword = opt_string(params, "TaskId"), opt_string(params, "Keyword")
  local status = opt_string(params, "Status")
  local offset, limit = opt_integer(params, "Offset") or 0, opt_integer(params, "Limit") or 20
  local area
  if s.areas then
    area = opt_string(params, "Area")
    if area and area ~= "mainland" and area ~= "overseas" and area ~= "global" then
      api_error(e.param, "Area must be `mainland`, `overseas` or `global`.")
    end
  end
  if status and not statuses[status] then
    local names = {}
    for k in pairs(statuses) do names[#names + 1] = "`" .. k .. "`" end
    table.sort(names)
    api_error(e.param, "Status must be one of " .. table.concat(names, ", ") .. ".")
  end
  if offset < 0 or limit < 1 or limit > 1000 then api_error(e.param, "Offset must be >= 0 and Limit 1..1000.") end
  if not task_id and not start_s then
    api_error(e.param, "TaskId or StartTime is required.")
  end
  local from, to = -math.huge, math.huge
  if start_s then
    from = parse_time(start_s) or api_error(e.param, "StartTime must look like 2018-08-08 00:00:00 (Beijing time).")
  end
  if end_s then
    to = parse_time(end_s) or api_error(e.param, "EndTime must look like 2018-08-08 23:59:59 (Beijing time).")
  end
  if to < from then api_error(e.param, "EndTime must not be before StartTime.") end
  local exact, needle
  if keyword and keyword ~= "" then
    local scheme = keyword:match("^(%a+)://")
    scheme = scheme and scheme:lower()
    if scheme == "http" or scheme == "https" then exact = keyword else needle = keyword:lower() end
  end
  local now = req.now
  return {
    offset = offset, limit = limit,
    match = function(t) -- the task's own fields
      local created = math.floor(t.created)
      return (not task_id or t.task_id == task_id) and created >= from and created <= to
             and (not status or self:status(t, now) == status)
    end,
    area = area,
    match_url = function(url)
      if exact then return url == exact end
      if needle then return url:lower():find(needle, 1, true) ~= nil end
      return true
    end,
  }
end

-- Runs q over the book's tasks, newest first; entry(t, url, status) makes a
-- log entry. Returns the page and the total.
local function describe_tasks(self, who, book, q, keep, entry, now)
  local list = self.tasks[who.secret_id .. "|" .. who.service .. "|" .. book] or { first = 1, last = 0 }
  local logs, total = array({}), 0
  for i = list.last, list.first, -1 do
    local t = list[i]
    if keep(t) and q.match(t) then
      local st = self:status(t, now)
      for _, url in ipairs(t.urls) do
        if q.match_url(url) then
          total = total + 1
          if total > q.offset and #logs < q.limit then logs[#logs + 1] = entry(t, url, st) end
        end
      end
    end
  end
  return logs, total
end

function actions.DescribePurgeTasks(self, s, who, params, req)
  local purge_type = opt_string(params, "PurgeType")
  if purge_type and purge_type ~= "url" and purge_type ~= "path" then
    api_error(s.errors.param, "PurgeType must be `url` or `path`.")
  end
  local q = task_query(self, s, params, req, STATUSES)
  local area = q.area ~= "global" and q.area or nil -- global: both areas
  local logs, total = describe_tasks(self, who, "purge", q, function(t)
    return (not purge_type or t.purge_type == purge_type) and (not area or t.area == area)
  end, function(t, url, st)
    return obj("TaskId", t.task_id, "Url", url, "Status", st, "PurgeType", t.purge_type,
               "FlushType", t.flush_type, "CreateTime", beijing_time(t.created))
  end, req.now)
  return obj("PurgeLogs", logs, "TotalCount", total)
end

-- PushTask: TaskId, Url, Status, Percent (0 in process, 100 when done or
-- failed), CreateTime, Area, UpdateTime (creation, then the end of --task-ms).
function actions.DescribePushTasks(self, s, who, params, req)
  local q = task_query(self, s, params, req, PUSH_STATUSES)
  local task_s = self.cfg.task_ms / 1000
  local logs, total = describe_tasks(self, who, "push", q, function(t)
    return not q.area or t.area == q.area
  end, function(t, url, st)
    local finished = st ~= "process"
    return obj("TaskId", t.task_id, "Url", url, "Status", st, "Percent", finished and 100 or 0,
               "CreateTime", beijing_time(t.created), "Area", t.area,
               "UpdateTime", beijing_time(finished and t.created + task_s or t.created))
  end, req.now)
  return obj("PushLogs", logs, "TotalCount", total)
end

function actions.DescribePurgeQuota(self, s, who, _, req)
  local cfg = self.cfg
  local path_batch = cfg.path_batch or s.path_batch
  local function quota(kind, batch, total, area)
    return obj("Batch", batch, "Total", total,
               "Available", self:available(who.secret_id, who.service, kind, area or "mainland", total, req.now),
               "Area", area)
  end
  if not s.areas then
    return obj("UrlPurge", quota("url", cfg.batch, cfg.quota), "PathPurge", quota("path", path_batch, cfg.path_quota))
  end
  local urls, paths = array({}), array({})
  for _, area in ipairs(s.areas) do
    urls[#urls + 1] = quota("url", cfg.batch, cfg.quota, area)
    paths[#paths + 1] = quota("path", path_batch, cfg.path_quota, area)
  end
  return obj("UrlPurge", urls, "PathPurge", paths)
end

-- DescribePushQuota (CDN only): UrlPush, one Quota per area.
function actions.DescribePushQuota(self, s, who, _, req)
  local cfg = self.cfg
  local pushes = array({})
  for _, area in ipairs(s.areas) do
    pushes[#pushes + 1] = obj("Batch", cfg.push_batch, "Total", cfg.push_quota,
                              "Available", self:available(who.secret_id, who.service, "push", area, cfg.push_quota,
                                                          req.now),
                              "Area", area)
  end
  return obj("UrlPush", pushes)
end

---------------------------------------------------------------------------

local function limit_message(count, limit)
  return string.format("Your current request times equals to `%d` in a second, which exceeds the frequency "
                       .. "limit `%d` for a second. Please reduce the frequency of calls.", count, limit)
end

-- The per-SecretId rate limit; returns the refusal message or nil (the
-- request counts as accepted). Sliding (default): refused when N requests
-- were accepted at times t with now - 1 < t <= now; refused ones do not
-- count; a clock set back before the last accepted request clears the
-- window. Fixed: one-second windows of the clock, every request counted.
function M:rate_limited(id, now)
  local limit = self.cfg.rate
  if limit <= 0 then return nil end
  local w = self.windows[id]
  if self.cfg.rate_window == "fixed" then
    local sec = math.floor(now)
    if not w or w[1] ~= sec then
      w = { sec, 0 }
      self.windows[id] = w
    end
    w[2] = w[2] + 1
    if w[2] > limit then return limit_message(w[2], limit) end
    return nil
  end
  -- A queue of the accepted times of the last second, at most N long.
  if not w or (w.last >= w.first and w[w.last] > now) then
    w = { first = 1, last = 0 }
    self.windows[id] = w
  end
  local first = w.first
  while first <= w.last and w[first] <= now - 1 do
    w[first] = nil
    first = first + 1
  end
  w.first = first
  local count = w.last - first + 1
  if count >= limit then return limit_message(count + 1, limit) end
  w.last = w.last + 1
  w[w.last] = now
  return nil
end

-- Common parameters: not action parameters. TC3 GET queries may carry the
-- first set (SDKs leave some there); V1 requests carry them all.
local COMMON = { Action = true, Version = true, Timestamp = true, Nonce = true, Region = true,
                 RequestClient = true, Language = true, Token = true }
local V1_COMMON = { SecretId = true, Signature = true, SignatureMethod = true }
for k in pairs(COMMON) do V1_COMMON[k] = true end
local FORM_BOOLEANS = { UrlEncode = true, ParseM3U8 = true, DisableRange = true }
local FORM_INTEGERS = { Offset = true, Limit = true }

local function answer(request_id, fields)
  fields = fields or obj()
  local keys = json.keys(fields)
  keys[#keys + 1] = "RequestId"
  fields.RequestId = request_id
  return json.encode(obj("Response", fields))
end

local function error_answer(request_id, code, message)
  return json.encode(obj("Response", obj("Error", obj("Code", code, "Message", message), "RequestId", request_id)))
end

local function is_form(h)
  return ((h["content-type"] or ""):lower():match("^%s*([^;%s]*)")) == "application/x-www-form-urlencoded"
end

-- req: {method, headers (lower-case names), body, query (raw, after "?"),
-- now}. Returns the answer body and the API code ("Success" or the error
-- code), for the stats.
function M:handle(req)
  local h = req.headers
  req.request_id = self.rng:uuid()
  req.at = math.floor(req.now * 1000 + 0.5) / 1000 -- log time, in ms
  local function refuse(code, message) return error_answer(req.request_id, code, message), code end
  if req.method == "GET" and #(req.query or "") > GET_MAX_QUERY then
    return refuse("RequestSizeLimitExceeded", "A GET request's query is limited to 32 KB; use POST.")
  end
  local who, code, message, action, version, params, perr
  if not h.authorization and (req.method == "GET" or is_form(h)) then -- signature V1
    if req.method == "POST" and #req.body > V1_MAX_BODY then
      return refuse("AuthFailure.SignatureFailure", "Request body exceeds 1 MB: the signature V1 request size "
                    .. "limit was exceeded, please use new signature method TC3-HMAC-SHA256.")
    end
    local list
    list, message = form.decode(req.method == "GET" and (req.query or "") or req.body)
    if not list then return refuse("InvalidParameter", message) end
    local map = {}
    for _, kv in ipairs(list) do map[kv[1]] = kv[2] end
    who, code, message = auth.verify_v1(self.cfg, h, map, req.method, "/", req.now)
    if not who then return refuse(code, message) end
    action, version = map.Action, map.Version
    if not who.service then who.service = SERVICE_OF_VERSION[version] end
    params, perr = form.params(list, V1_COMMON, FORM_BOOLEANS, FORM_INTEGERS)
  else
    who, code, message = auth.verify(self.cfg, h, req.body, req.now, req.method, req.query)
    if not who then return refuse(code, message) end
    action, version = h["x-tc-action"], h["x-tc-version"]
    if req.method == "GET" then
      local list
      list, perr = form.decode(req.query or "")
      if list then params, perr = form.params(list, COMMON, FORM_BOOLEANS, FORM_INTEGERS) end
    else
      local ok
      ok, params = pcall(cjson.decode, req.body == "" and "{}" or req.body)
      if not (ok and type(params) == "table") then
        params, perr = nil, "The request body is not a valid JSON object."
      end
    end
  end
  local s = SERVICES[who.service]
  if not action or action == "" then
    code, message = "MissingParameter", "The request is missing a required parameter `Action`."
  elseif not version or version == "" then
    code, message = "MissingParameter", "The request is missing a required parameter `Version`."
  elseif not s then -- V1 to a Host naming no product, with a Version of neither
    code, message = "NoSuchVersion", string.format("The requested version `%s` does not exist.", clip(version))
  elseif version ~= s.version then
    code, message = "NoSuchVersion", string.format("The requested version `%s` of service `%s` does not exist.",
                                                   clip(version), who.service)
  elseif not s.actions[action] then
    code, message = "InvalidAction", string.format("The requested action `%s` does not exist.", clip(action))
  else
    message = self:rate_limited(who.secret_id, req.now)
    code = message and "RequestLimitExceeded"
    if not code and who.service == "ecdn" and self.cfg.migrated and self.cfg.migrated[who.secret_id] then
      code, message = MIGRATED, "This account has been migrated to CDN: please use the CDN API "
                                .. "(cdn.tencentcloudapi.com, 2018-06-06)."
    end
  end
  if code then return refuse(code, message) end
  if not params then return refuse("InvalidParameter", perr) end

  local ok, fields = pcall(function()
    check_known(params, s.actions[action])
    return actions[action](self, s, who, params, req)
  end)
  if not ok then
    if type(fields) == "table" and fields.api then return refuse(fields.code, fields.message) end
    io.stderr:write("ecdn-sim: internal error: ", tostring(fields), "\n")
    return refuse("InternalError", "An internal error has occurred.")
  end
  return answer(req.request_id, fields), "Success"
end

return M
