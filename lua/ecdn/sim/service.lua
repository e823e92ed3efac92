-- The purge service itself: authentication, routing by service/version/action,
-- rate limit, the documented purge rules, daily quotas, tasks and the log.
-- handle() takes a parsed request and returns the JSON text of the answer body.
local cjson = require "cjson"
local auth = require "ecdn.sim.auth"
local json = require "ecdn.sim.json"

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
    },
  },
}
M.SERVICES = SERVICES

local BEIJING = 8 * 3600          -- daily quotas and task times follow Beijing time
local MAX_TASK_URLS = 200000      -- URLs/paths of past tasks kept per SecretId and service

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
    windows = {},   -- SecretId -> {second, count}
    used = {},      -- "id|service|kind|area|day" -> count
    tasks = {},     -- "id|service" -> array of records
    id_second = 0, ids_this_second = {}, -- TaskIds start with the second: unique within it
    counts = { purged_urls = 0, purged_paths = 0 },
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

local function area_of(s, params)
  if not s.areas then return "mainland" end
  local area = opt_string(params, "Area")
  if area == nil then return "mainland" end -- the domain's own region; domains here are mainland
  if area ~= "mainland" and area ~= "overseas" then
    api_error(s.errors.param, "Area must be `mainland` or `overseas`.")
  end
  return area
end

-- Applies the documented per-URL rules; returns nothing or raises.
function M:check_url(s, u, i, what)
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
    api_error(e.wildcard, string.format("%s `%s`: wildcard domains cannot be purged.", what, clip(u)))
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
-- copied). The oldest tasks are forgotten past MAX_TASK_URLS URLs.
function M:record(id, service, task_id, items, purge_type, flush_type, area, now)
  local key = id .. "|" .. service
  local list = self.tasks[key]
  if not list then
    list = { first = 1, last = 0, urls = 0 }
    self.tasks[key] = list
  end
  list.last = list.last + 1
  list[list.last] = { task_id = task_id, urls = items, purge_type = purge_type, flush_type = flush_type,
                      area = area, created = now }
  list.urls = list.urls + #items
  while list.urls > MAX_TASK_URLS and list.first < list.last do
    list.urls = list.urls - #list[list.first].urls
    list[list.first] = nil
    list.first = list.first + 1
  end
end

---------------------------------------------------------------------------
-- Actions: each returns the Response fields (before RequestId).

local actions = {}

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
  self:record(who.secret_id, who.service, task_id, items, p.kind, p.flush, p.area, req.now)
  local counter = "purged_" .. p.kind .. "s"
  self.counts[counter] = self.counts[counter] + #items
  if self.log then
    if p.kind == "url" then
      self.log:write(obj("task_id", task_id, "request_id", req.request_id, "secret_id", who.secret_id,
                         "service", who.service, "urls", array(items), "at", req.at))
    else
      self.log:write(obj("task_id", task_id, "request_id", req.request_id, "secret_id", who.secret_id,
                         "service", who.service, "action", "PurgePathCache", "paths", array(items),
                         "flush_type", p.flush, "at", req.at))
    end
  end
  return obj("TaskId", task_id)
end

function actions.PurgeUrlsCache(self, s, who, params, req)
  local cfg = self.cfg
  local urls = string_list(params, "Urls")
  local area = area_of(s, params)
  opt_boolean(params, "UrlEncode")
  return accept_purge(self, s, who, req, {
    kind = "url", label = "Url", noun = "URLs", items = urls, area = area,
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
  local area = area_of(s, params)
  opt_boolean(params, "UrlEncode")
  return accept_purge(self, s, who, req, {
    kind = "path", label = "Path", noun = "paths", items = paths, area = area, flush = flush,
    batch = cfg.path_batch or s.path_batch, batch_code = s.errors.path_batch,
    quota = cfg.path_quota, day_code = s.errors.path_day,
  })
end

local STATUSES = { fail = true, done = true, process = true }

function actions.DescribePurgeTasks(self, s, who, params, req)
  local e = s.errors
  local purge_type = opt_string(params, "PurgeType")
  local start_s, end_s = opt_string(params, "StartTime"), opt_string(params, "EndTime")
  local task_id, keyword = opt_string(params, "TaskId"), opt_string(params, "Keyword")
  local status = opt_string(params, "Status")
  local offset, limit = opt_integer(params, "Offset") or 0, opt_integer(params, "Limit") or 20
  if s.areas then
    local area = opt_string(params, "Area")
    if area and area ~= "mainland" and area ~= "overseas" and area ~= "global" then
      api_error(e.param, "Area must be `mainland`, `overseas` or `global`.")
    end
  end
  if purge_type and purge_type ~= "url" and purge_type ~= "path" then
    api_error(e.param, "PurgeType must be `url` or `path`.")
  end
  if status and not STATUSES[status] then api_error(e.param, "Status must be `fail`, `done` or `process`.") end
  if offset < 0 or limit < 1 or limit > 1000 then api_error(e.param, "Offset must be >= 0 and Limit 1..1000.") end
  if not task_id and not start_s then
    api_error("MissingParameter", "The request is missing a required parameter: `TaskId` or `StartTime`.")
  end
  local from, to = -math.huge, math.huge
  if start_s then
    from = parse_time(start_s) or api_error(e.param, "StartTime must look like 2018-08-08 00:00:00.")
    to = end_s and (parse_time(end_s) or api_error(e.param, "EndTime must look like 2018-08-08 23:59:59."))
        or req.now
  end
  local done_after = self.cfg.task_ms / 1000
  local list = self.tasks[who.secret_id .. "|" .. who.service] or { first = 1, last = 0 }
  local logs, total = array({}), 0
  for i = list.last, list.first, -1 do -- newest first
    local t = list[i]
    local st = (req.now - t.created >= done_after) and "done" or "process"
    local created = math.floor(t.created)
    if (not task_id or t.task_id == task_id)
        and (not purge_type or t.purge_type == purge_type)
        and created >= from and created <= to
        and (not status or st == status) then
      for _, url in ipairs(t.urls) do
        if not keyword or url:find(keyword, 1, true) then
          total = total + 1
          if total > offset and #logs < limit then
            logs[#logs + 1] = obj("TaskId", t.task_id, "Url", url, "Status", st, "PurgeType", t.purge_type,
                                  "FlushType", t.flush_type, "CreateTime", beijing_time(t.created))
          end
        end
      end
    end
  end
  return obj("PurgeLogs", logs, "TotalCount", total)
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

---------------------------------------------------------------------------

-- Fixed one-second windows per SecretId, like the service's per-second limit.
function M:rate_limited(id, now)
  local limit = self.cfg.rate
  if limit <= 0 then return nil end
  local sec = math.floor(now)
  local w = self.windows[id]
  if not w or w[1] ~= sec then
    w = { sec, 0 }
    self.windows[id] = w
  end
  w[2] = w[2] + 1
  if w[2] > limit then
    return string.format("Your current request times equals to `%d` in a second, which exceeds the frequency "
                         .. "limit `%d` for a second. Please reduce the frequency of calls.", w[2], limit)
  end
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

-- Common parameters an SDK may leave in a GET query; they are not action parameters.
local COMMON = { Action = true, Version = true, Timestamp = true, Nonce = true, Region = true,
                 RequestClient = true, Language = true, Token = true }
local GET_BOOLEANS = { UrlEncode = true }
local GET_INTEGERS = { Offset = true, Limit = true }

-- Parameters of a GET request, flattened as the SDKs send them
-- ("Urls.0=...&Urls.1=..."), back into the JSON shape; or nil, message.
local function query_params(query)
  local params = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unescape(k), unescape(v)
    local name, index = k:match("^([^.]+)%.(%d+)$")
    if name then
      local list = params[name]
      if list == nil then
        list = {}
        params[name] = list
      end
      if type(list) ~= "table" or tonumber(index) > 100000 then
        return nil, "The value type of parameter `" .. name .. "` is not valid."
      end
      list[tonumber(index) + 1] = v
    elseif not COMMON[k] then
      if GET_BOOLEANS[k] then
        if v ~= "true" and v ~= "false" then return nil, "The value type of parameter `" .. k .. "` is not valid." end
        v = v == "true"
      elseif GET_INTEGERS[k] then
        v = v:match("^%d+$") and math.tointeger(tonumber(v)) or v
      end
      params[k] = v
    end
  end
  for name, v in pairs(params) do -- lists must run from .0 without holes
    if type(v) == "table" then
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      if n ~= #v then return nil, "The parameter `" .. name .. "` has holes in its indexes." end
    end
  end
  return params
end

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

-- req: {headers (lower-case names), body, now}. Returns the answer body and
-- the API code ("Success" or the error code), for the stats.
function M:handle(req)
  local h = req.headers
  req.request_id = self.rng:uuid()
  req.at = math.floor(req.now * 1000 + 0.5) / 1000 -- log time, in ms
  local who, code, message = auth.verify(self.cfg, h, req.body, req.now, req.method, req.query)
  if not who then return error_answer(req.request_id, code, message), code end
  local s = SERVICES[who.service]
  local version, action = h["x-tc-version"], h["x-tc-action"]
  if not action then
    code, message = "MissingParameter", "The request is missing a required parameter `Action`."
  elseif not version then
    code, message = "MissingParameter", "The request is missing a required parameter `Version`."
  elseif version ~= s.version then
    code, message = "NoSuchVersion", string.format("The requested version `%s` of service `%s` does not exist.",
                                                   clip(version), who.service)
  elseif not s.actions[action] then
    code, message = "InvalidAction", string.format("The requested action `%s` does not exist.", clip(action))
  else
    message = self:rate_limited(who.secret_id, req.now)
    code = message and "RequestLimitExceeded"
  end
  if code then return error_answer(req.request_id, code, message), code end

  local ok, params
  if req.method == "GET" then
    params, message = query_params(req.query or "")
    ok = params ~= nil
  else
    ok, params = pcall(cjson.decode, req.body == "" and "{}" or req.body)
    ok = ok and type(params) == "table"
    message = "The request body is not a valid JSON object."
  end
  if not ok then return error_answer(req.request_id, "InvalidParameter", message), "InvalidParameter" end
  local fields
  ok, fields = pcall(function()
    check_known(params, s.actions[action])
    return actions[action](self, s, who, params, req)
  end)
  if not ok then
    if type(fields) == "table" and fields.api then
      return error_answer(req.request_id, fields.code, fields.message), fields.code
    end
    io.stderr:write("ecdn-sim: internal error: ", tostring(fields), "\n")
    return error_answer(req.request_id, "InternalError", "An internal error has occurred."), "InternalError"
  end
  return answer(req.request_id, fields), "Success"
end

return M
