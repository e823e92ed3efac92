-- Simulator CDN extras and migrated accounts: Area and UrlEncode on CDN
-- purges (UnknownParameter on ECDN), PushUrlsCache with its own batch limit
-- and per-area daily quota (global uses both), DescribePushTasks,
-- DescribePushQuota, DescribePurgeQuota's two shapes, and --migrated.
local sim = require "support.sim"
local cjson = require "cjson"

local T = 1700000000 -- 2023-11-15 06:13:20 in Beijing

local CDN = { service = "cdn" }

local call = sim.api_call -- (s, action, params, opts) -> error code | nil, Response

local function urls(n, prefix)
  local t = {}
  for i = 1, n do t[i] = (prefix or "http://a.com/u") .. i end
  return t
end

local function by_task(s, task_id)
  for _, e in ipairs(s:log_entries()) do
    if e.task_id == task_id then return e end
  end
end

describe("simulator CDN purge parameters", function()
  local s
  before_each(function()
    s = sim.start { args = { "--rate", "0", "--seed", "51", "--quota", "4", "--path-quota", "2",
                             "--fake-clock", tostring(T) }, log = true }
  end)
  after_each(function() s:stop() end)

  it("takes Area (mainland | overseas) and UrlEncode on CDN, logs them, and counts quota per area", function()
    for _, action in ipairs { "PurgeUrlsCache", "PurgePathCache" } do
      local list = action == "PurgeUrlsCache" and "Urls" or "Paths"
      local function p(extra)
        local t = { [list] = { "http://a.com/d/" }, FlushType = action == "PurgePathCache" and "flush" or nil }
        for k, v in pairs(extra) do t[k] = v end
        return t
      end
      local code, resp = call(s, action, p { Area = "overseas", UrlEncode = true }, CDN)
      assert.is_nil(code, action)
      local e = by_task(s, resp.TaskId)
      assert.equal("overseas", e.area)
      assert.is_true(e.url_encode)
      code, resp = call(s, action, p { UrlEncode = false }, CDN)
      assert.is_nil(code)
      e = by_task(s, resp.TaskId)
      assert.is_nil(e.area) -- not given: not logged (the domain's own region, mainland)
      assert.is_false(e.url_encode)
      assert.equal("InvalidParameter.CdnParamError", call(s, action, p { Area = "global" }, CDN)) -- push only
      assert.equal("InvalidParameter.CdnParamError", call(s, action, p { Area = "Mainland" }, CDN))
      assert.equal("InvalidParameter", call(s, action, p { UrlEncode = "true" }, CDN))
      -- ECDN knows neither
      assert.equal("UnknownParameter", call(s, action, p { Area = "mainland" }))
      assert.equal("UnknownParameter", call(s, action, p { UrlEncode = true }))
    end
    -- per-area quotas: 1 URL used in each area above, 3 left in each
    assert.equal("LimitExceeded.CdnPurgeUrlExceedDayLimit",
                 call(s, "PurgeUrlsCache", { Urls = urls(4), Area = "overseas" }, CDN))
    assert.is_nil(call(s, "PurgeUrlsCache", { Urls = urls(3), Area = "overseas" }, CDN))
    assert.is_nil(call(s, "PurgeUrlsCache", { Urls = urls(3), Area = "mainland" }, CDN))
    -- paths: 1 of 2 used in each area
    local function paths(n, area)
      return (call(s, "PurgePathCache", { Paths = urls(n, "http://a.com/x/"), FlushType = "delete", Area = area }, CDN))
    end
    assert.equal("LimitExceeded.CdnPurgePathExceedDayLimit", paths(2, "overseas"))
    assert.is_nil(paths(1, "overseas"))
    assert.equal("LimitExceeded.CdnPurgePathExceedDayLimit", paths(1, "overseas"))
    assert.is_nil(paths(1)) -- mainland
  end)

  it("answers DescribePurgeQuota per area on CDN, as one object on ECDN", function()
    assert.is_nil(call(s, "PurgeUrlsCache", { Urls = urls(3), Area = "overseas" }, CDN))
    assert.is_nil(call(s, "PurgeUrlsCache", { Urls = urls(1) })) -- ECDN: its own quota
    local _, q = call(s, "DescribePurgeQuota", {}, CDN)
    assert.same({ { Batch = 1000, Total = 4, Available = 4, Area = "mainland" },
                  { Batch = 1000, Total = 4, Available = 1, Area = "overseas" } }, q.UrlPurge)
    assert.same({ { Batch = 500, Total = 2, Available = 2, Area = "mainland" },
                  { Batch = 500, Total = 2, Available = 2, Area = "overseas" } }, q.PathPurge)
    _, q = call(s, "DescribePurgeQuota", {})
    assert.same({ Batch = 1000, Total = 4, Available = 3 }, q.UrlPurge)
    assert.same({ Batch = 20, Total = 2, Available = 2 }, q.PathPurge)
    -- the next Beijing day starts at 16:00 UTC: everything is available again
    s:set_clock(T + (24 - 6) * 3600 - 13 * 60 - 20) -- 2023-11-16 00:00:00 Beijing
    _, q = call(s, "DescribePurgeQuota", {}, CDN)
    assert.equal(4, q.UrlPurge[2].Available)
  end)
end)

describe("simulator PushUrlsCache (CDN only)", function()
  local s
  before_each(function()
    s = sim.start { args = { "--rate", "0", "--seed", "52", "--push-batch", "3", "--push-quota", "5",
                             "--task-ms", "1000", "--fake-clock", tostring(T), "--domains", "a.com" }, log = true }
  end)
  after_each(function() s:stop() end)

  it("prefetches Urls with Area and UserAgent, logs it, and is InvalidAction on ECDN", function()
    local code, resp = call(s, "PushUrlsCache", { Urls = { "http://a.com/p1", "http://a.com/p2" }, Area = "overseas",
                                                  UserAgent = "MyAgent/1.0" }, CDN)
    assert.is_nil(code)
    assert.matches("^%d+%-[a-z0-9]+$", resp.TaskId)
    local e = by_task(s, resp.TaskId)
    assert.same({ task_id = resp.TaskId, request_id = resp.RequestId, secret_id = sim.DEFAULT_SECRET_ID,
                  service = "cdn", action = "PushUrlsCache", urls = { "http://a.com/p1", "http://a.com/p2" },
                  area = "overseas", user_agent = "MyAgent/1.0", at = T }, e)
    code, resp = call(s, "PushUrlsCache", { Urls = { "http://a.com/p3" } }, CDN)
    assert.is_nil(code)
    e = by_task(s, resp.TaskId)
    assert.equal("mainland", e.area)         -- default area
    assert.equal("TencentCdn", e.user_agent) -- default User-Agent
    assert.equal(3, s:stats().pushed_urls)
    assert.equal(0, s:stats().purged_urls)
    for _, action in ipairs { "PushUrlsCache", "DescribePushTasks", "DescribePushQuota" } do
      assert.equal("InvalidAction", call(s, action, { Urls = { "http://a.com/p" } }), action)
    end
  end)

  it("checks its parameters and URLs with its own codes", function()
    local function push(p) return (call(s, "PushUrlsCache", p, CDN)) end
    assert.equal("LimitExceeded.CdnPushExceedBatchLimit", push { Urls = urls(4) })
    assert.equal("InvalidParameter.CdnPushWildcardNotAllowed", push { Urls = { "http://*.a.com/x" } })
    assert.equal("ResourceNotFound.CdnHostNotExists", push { Urls = { "http://b.com/x" } })
    assert.equal("InvalidParameter.CdnParamError", push { Urls = { "ftp://a.com/x" } })
    assert.equal("InvalidParameter.CdnParamError", push { Urls = {} })
    assert.equal("InvalidParameter.CdnParamError", push { Urls = urls(1), Area = "moon" })
    assert.equal("InvalidParameter.CdnParamError", push { Urls = urls(1), Layer = "edge" })
    assert.equal("MissingParameter", push {})
    assert.equal("UnknownParameter", push { Urls = urls(1), FlushType = "flush" })
    assert.equal("InvalidParameter", push { Urls = urls(1), ParseM3U8 = "yes" })
    local hdrs = {}
    for i = 1, 21 do hdrs[i] = { Name = "X-H" .. i, Value = "v" } end
    assert.equal("InvalidParameter.CdnParamError", push { Urls = urls(1), Headers = hdrs })
    assert.equal("InvalidParameter.CdnParamError", push { Urls = urls(1), Headers = { { Name = ("n"):rep(129),
                                                                                          Value = "v" } } })
    assert.equal("InvalidParameter", push { Urls = urls(1), Headers = { "X-A: b" } })
    hdrs[21] = nil
    assert.is_nil(push { Urls = urls(1), Headers = hdrs, Layer = "middle", ParseM3U8 = true, DisableRange = false,
                         UrlEncode = true })
    -- the same, as V1 with flattened Headers.N.Name / Headers.N.Value
    local status, raw, decoded = sim.v1_request(s.port, "PushUrlsCache", {
      Urls = urls(1), Headers = { { Name = "X-A", Value = "b" } }, ParseM3U8 = true },
      { service = "cdn", timestamp = T })
    assert.equal(200, status)
    assert.is_nil(decoded.Response.Error, raw)
  end)

  it("has its own daily quota per area; a global push uses both areas, all or nothing", function()
    local function push(n, area)
      return (call(s, "PushUrlsCache", { Urls = urls(n, "http://a.com/q"), Area = area }, CDN))
    end
    local function available()
      local _, q = call(s, "DescribePushQuota", {}, CDN)
      assert.equal(2, #q.UrlPush)
      return { q.UrlPush[1].Available, q.UrlPush[2].Available }, q.UrlPush
    end
    local _, shape = available()
    assert.same({ { Batch = 3, Total = 5, Available = 5, Area = "mainland" },
                  { Batch = 3, Total = 5, Available = 5, Area = "overseas" } }, shape)
    assert.is_nil(push(3, "global"))
    assert.same({ 2, 2 }, available())
    assert.is_nil(push(1, "mainland"))
    assert.same({ 1, 2 }, available())
    assert.equal("LimitExceeded.CdnPushExceedDayLimit", push(2, "global")) -- mainland lacks one: nothing taken
    assert.same({ 1, 2 }, available())
    assert.is_nil(push(2, "overseas"))
    assert.equal("LimitExceeded.CdnPushExceedDayLimit", push(1, "overseas"))
    assert.same({ 1, 0 }, available())
    -- purge quotas are untouched
    local _, q = call(s, "DescribePurgeQuota", {}, CDN)
    assert.equal(10000, q.UrlPurge[1].Available)
  end)

  it("answers DescribePushTasks: {TaskId, Url, Status, Percent, CreateTime, Area, UpdateTime}", function()
    s:set_clock(T + 0.5)
    local _, r1 = call(s, "PushUrlsCache", { Urls = { "http://a.com/g1", "http://a.com/g2" }, Area = "global" }, CDN)
    s:set_clock(T + 10)
    local _, r2 = call(s, "PushUrlsCache", { Urls = { "http://a.com/m1" } }, CDN)
    local _, raw = sim.raw_request(s.port, "DescribePushTasks", cjson.encode { StartTime = sim.beijing(T) },
                                   { service = "cdn", timestamp = T + 10 })
    assert.equal('{"Response":{"PushLogs":['
      .. '{"TaskId":"' .. r2.TaskId .. '","Url":"http://a.com/m1","Status":"process","Percent":0,'
      .. '"CreateTime":"2023-11-15 06:13:30","Area":"mainland","UpdateTime":"2023-11-15 06:13:30"},'
      .. '{"TaskId":"' .. r1.TaskId .. '","Url":"http://a.com/g1","Status":"done","Percent":100,'
      .. '"CreateTime":"2023-11-15 06:13:20","Area":"global","UpdateTime":"2023-11-15 06:13:21"},'
      .. '{"TaskId":"' .. r1.TaskId .. '","Url":"http://a.com/g2","Status":"done","Percent":100,'
      .. '"CreateTime":"2023-11-15 06:13:20","Area":"global","UpdateTime":"2023-11-15 06:13:21"}'
      .. '],"TotalCount":3,"RequestId":"', raw:sub(1, #raw - 39))
    local function q(p)
      local code, resp = call(s, "DescribePushTasks", p, CDN)
      assert.is_nil(code, code)
      local out = {}
      for i, l in ipairs(resp.PushLogs) do out[i] = l.Url end
      return out, resp.TotalCount
    end
    local from = sim.beijing(T)
    assert.same({ "http://a.com/m1" }, q { StartTime = from, Area = "mainland" })
    assert.same({ "http://a.com/g1", "http://a.com/g2" }, q { StartTime = from, Area = "global" })
    assert.same({}, q { StartTime = from, Area = "overseas" })
    assert.same({ "http://a.com/g2" }, q { StartTime = from, Keyword = "http://a.com/g2" })
    assert.same({ "http://a.com/m1" }, q { TaskId = r2.TaskId })
    assert.same({ "http://a.com/m1" }, q { StartTime = from, Status = "process" })
    assert.same({ "http://a.com/g1" }, q { StartTime = from, Status = "done", Limit = 1 })
    assert.same({}, q { StartTime = from, Status = "invalid" })
    assert.same({ "http://a.com/g1", "http://a.com/g2" }, q { StartTime = from, EndTime = sim.beijing(T + 9) })
    assert.equal("InvalidParameter.CdnParamError", call(s, "DescribePushTasks", {}, CDN))
    assert.equal("InvalidParameter.CdnParamError",
                 call(s, "DescribePushTasks", { StartTime = from, Status = "x" }, CDN))
    assert.equal("UnknownParameter", call(s, "DescribePushTasks", { StartTime = from, PurgeType = "url" }, CDN))
    -- pushes are not purges
    local _, r = call(s, "DescribePurgeTasks", { StartTime = from }, CDN)
    assert.equal(0, r.TotalCount)
  end)
end)

describe("simulator --migrated", function()
  local MIG = { secret_id = "AKIDMIGRATED0000000000000000000000000", secret_key = "migratedkey" }
  local s
  setup(function()
    s = sim.start { args = { "--rate", "2", "--seed", "53", "--fake-clock", tostring(T),
                             "--secret", sim.DEFAULT_SECRET_ID .. ":" .. sim.DEFAULT_SECRET_KEY,
                             "--secret", MIG.secret_id .. ":" .. MIG.secret_key, "--migrated", MIG.secret_id },
                    log = true }
  end)
  teardown(function() s:stop() end)

  local function as_mig(extra)
    local o = { secret_id = MIG.secret_id, secret_key = MIG.secret_key }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  it("answers UnauthorizedOperation.EcdnMigratedCdn to every ecdn action of that SecretId; cdn works", function()
    local EM = "UnauthorizedOperation.EcdnMigratedCdn"
    local t = T
    local function tick() t = t + 1 s:set_clock(t) end -- --rate 2: a fresh window for each pair
    tick()
    for _, c in ipairs {
      { "PurgeUrlsCache", { Urls = { "http://a.com/m" } } },
      { "PurgePathCache", { Paths = { "http://a.com/m/" }, FlushType = "flush" } },
      { "DescribePurgeTasks", { StartTime = sim.beijing(T) } },
      { "DescribePurgeQuota", {} },
    } do
      tick()
      local code, resp = call(s, c[1], c[2], as_mig())
      assert.equal(EM, code, c[1])
      assert.is_string(resp.Error.Message)
      -- and signed V1
      local _, _, decoded = sim.v1_request(s.port, c[1], c[2], as_mig { timestamp = t })
      assert.equal(EM, decoded.Response.Error.Code, c[1] .. " V1")
    end
    -- nothing was purged by them
    assert.same({}, s:log_entries())
    -- the same account on cdn: works
    tick()
    local code, resp = call(s, "PurgeUrlsCache", { Urls = { "http://a.com/m" } }, as_mig(CDN))
    assert.is_nil(code)
    assert.equal(MIG.secret_id, by_task(s, resp.TaskId).secret_id)
    -- other accounts on ecdn: work
    assert.is_nil(call(s, "PurgeUrlsCache", { Urls = { "http://a.com/m" } }))
    -- routing errors come first; the refusal happens after the rate limit (it counts)
    tick()
    assert.equal("InvalidAction", call(s, "PushUrlsCache", { Urls = { "http://a.com/m" } }, as_mig()))
    assert.equal(EM, call(s, "DescribePurgeQuota", {}, as_mig()))
    assert.equal(EM, call(s, "DescribePurgeQuota", {}, as_mig()))
    assert.equal("RequestLimitExceeded", call(s, "DescribePurgeQuota", {}, as_mig()))
    assert.equal("RequestLimitExceeded", call(s, "DescribePurgeQuota", {}, as_mig(CDN)))
  end)
end)
