-- Simulator DescribePurgeTasks as the service documents it: TaskId or
-- StartTime required, StartTime/EndTime in Beijing time and inclusive,
-- Keyword (a full URL: equal; a domain: contained), Status, PurgeType, Area
-- (CDN), Offset/Limit, the PurgeTask shape; --task-fail-rate; and the lookup
-- a bulk engine makes after an uncertain send. Time is the fake clock's.
local sim = require "support.sim"
local cjson = require "cjson"

local T = 1700000000 -- 2023-11-14 22:13:20 UTC = 2023-11-15 06:13:20 in Beijing

local call = sim.api_call -- (s, action, params, opts) -> error code | nil, Response

local function purge(s, urls, opts, extra)
  local params = { Urls = urls }
  for k, v in pairs(extra or {}) do params[k] = v end
  local code, resp = call(s, "PurgeUrlsCache", params, opts)
  assert.is_nil(code, code)
  return resp.TaskId
end

local function tasks(s, params, opts)
  local code, resp = call(s, "DescribePurgeTasks", params, opts)
  assert.is_nil(code, code and resp.Error.Message)
  return resp.PurgeLogs, resp.TotalCount
end

local function urls_of(logs)
  local out = {}
  for i, l in ipairs(logs) do out[i] = l.Url end
  return out
end

local CDN = { service = "cdn" }

describe("simulator DescribePurgeTasks", function()
  local s
  before_each(function()
    s = sim.start { args = { "--rate", "0", "--seed", "31", "--task-ms", "1000", "--fake-clock", tostring(T) } }
  end)
  after_each(function() s:stop() end)

  it("answers PurgeLogs: one {TaskId, Url, Status, PurgeType, FlushType, CreateTime} per URL, newest first", function()
    s:set_clock(T + 0.5)
    local a = purge(s, { "http://a.com/1", "http://a.com/2" })
    s:set_clock(T + 5.25)
    local code, resp = call(s, "PurgePathCache", { Paths = { "http://a.com/d/" }, FlushType = "flush" })
    assert.is_nil(code)
    local p = resp.TaskId
    local _, raw = sim.raw_request(s.port, "DescribePurgeTasks", cjson.encode { StartTime = sim.beijing(T) },
                                   { timestamp = T + 5 })
    -- the exact bytes: field order as the API lists them, Beijing times
    assert.equal('{"Response":{"PurgeLogs":['
      .. '{"TaskId":"' .. p .. '","Url":"http://a.com/d/","Status":"process","PurgeType":"path",'
      .. '"FlushType":"flush","CreateTime":"2023-11-15 06:13:25"},'
      .. '{"TaskId":"' .. a .. '","Url":"http://a.com/1","Status":"done","PurgeType":"url",'
      .. '"FlushType":"delete","CreateTime":"2023-11-15 06:13:20"},'
      .. '{"TaskId":"' .. a .. '","Url":"http://a.com/2","Status":"done","PurgeType":"url",'
      .. '"FlushType":"delete","CreateTime":"2023-11-15 06:13:20"}'
      .. '],"TotalCount":3,"RequestId":"', raw:sub(1, #raw - 39)) -- RequestId: 36 characters, then "}}
    assert.matches('"RequestId":"[%x%-]+"}}$', raw)
    -- PurgeType filters url / path
    assert.same({ "http://a.com/d/" }, urls_of((tasks(s, { StartTime = sim.beijing(T), PurgeType = "path" }))))
    assert.same({ "http://a.com/1", "http://a.com/2" },
                urls_of((tasks(s, { StartTime = sim.beijing(T), PurgeType = "url" }))))
    assert.equal("InvalidParameter.EcdnParamError", call(s, "DescribePurgeTasks",
                                                          { StartTime = sim.beijing(T), PurgeType = "dir" }))
  end)

  it("needs TaskId or StartTime (InvalidParameter.*ParamError), and checks the other fields", function()
    purge(s, { "http://a.com/x" })
    for _, svc in ipairs { "ecdn", "cdn" } do
      local bad = svc == "ecdn" and "InvalidParameter.EcdnParamError" or "InvalidParameter.CdnParamError"
      local o = { service = svc }
      assert.equal(bad, call(s, "DescribePurgeTasks", {}, o))
      assert.equal(bad, call(s, "DescribePurgeTasks", { EndTime = sim.beijing(T) }, o))
      assert.equal(bad, call(s, "DescribePurgeTasks", { Keyword = "a.com", Limit = 5 }, o))
      for _, p in ipairs {
        { StartTime = "2023-11-15T06:13:20" }, { StartTime = "2023-11-15" }, { StartTime = "2023-13-01 00:00:00" },
        { StartTime = sim.beijing(T), EndTime = sim.beijing(T - 1) }, -- ends before it starts
        { StartTime = sim.beijing(T), EndTime = "tomorrow" },
        { StartTime = sim.beijing(T), Status = "Done" }, { StartTime = sim.beijing(T), Status = "invalid" },
        { StartTime = sim.beijing(T), Limit = 0 }, { StartTime = sim.beijing(T), Limit = 1001 },
        { StartTime = sim.beijing(T), Offset = -1 },
      } do
        assert.equal(bad, call(s, "DescribePurgeTasks", p, o), svc .. " " .. cjson.encode(p))
      end
      assert.equal("InvalidParameter", call(s, "DescribePurgeTasks", { StartTime = sim.beijing(T), Limit = "5" }, o))
      assert.is_nil(call(s, "DescribePurgeTasks", { StartTime = sim.beijing(T), Limit = 1000 }, o))
    end
    -- TaskId alone is enough; an unknown one finds nothing
    local id = purge(s, { "http://a.com/y" })
    local logs, total = tasks(s, { TaskId = id })
    assert.equal(1, total)
    assert.equal("http://a.com/y", logs[1].Url)
    assert.same({ {}, 0 }, { tasks(s, { TaskId = "1700000000-zzzzzzzz" }) })
    -- Area is a CDN parameter
    assert.equal("UnknownParameter", call(s, "DescribePurgeTasks", { TaskId = id, Area = "mainland" }))
  end)

  it("reads StartTime and EndTime as Beijing time, inclusive, to the second", function()
    s:set_clock(T + 0.75)
    purge(s, { "http://a.com/t0" })
    s:set_clock(T + 10.5) -- CreateTime is the second: T+10
    purge(s, { "http://a.com/t10" })
    s:set_clock(T + 20)
    purge(s, { "http://a.com/t20" })
    local function window(from, to)
      return urls_of((tasks(s, { StartTime = from and sim.beijing(from), EndTime = to and sim.beijing(to) })))
    end
    assert.same({ "http://a.com/t20", "http://a.com/t10", "http://a.com/t0" }, window(T))
    assert.same({ "http://a.com/t20", "http://a.com/t10" }, window(T + 10, T + 20)) -- both ends included
    assert.same({ "http://a.com/t20" }, window(T + 11))
    assert.same({ "http://a.com/t10" }, window(T + 10, T + 10))
    assert.same({ "http://a.com/t0" }, window(T - 3600, T + 9))
    assert.same({}, window(T + 21))
    -- The same instants written in UTC mean 8 hours earlier: "T+11 UTC" read as Beijing time is
    -- before every task, so all three match, and "T+20 UTC" as an EndTime is before them all.
    assert.same({ "http://a.com/t20", "http://a.com/t10", "http://a.com/t0" },
                urls_of((tasks(s, { StartTime = os.date("!%Y-%m-%d %H:%M:%S", T + 11) }))))
    assert.same({}, urls_of((tasks(s, { StartTime = sim.beijing(T - 86400),
                                        EndTime = os.date("!%Y-%m-%d %H:%M:%S", T + 20) }))))
    -- and CreateTime is written in Beijing time
    local logs = tasks(s, { StartTime = sim.beijing(T + 10), EndTime = sim.beijing(T + 10) })
    assert.equal("2023-11-15 06:13:30", logs[1].CreateTime)
  end)

  it("Keyword: a full http(s):// URL matches that URL exactly, a domain every URL containing it", function()
    purge(s, { "http://a.com/x", "http://a.com/x1", "https://a.com/x" })
    purge(s, { "http://b.com/a.com/x", "http://WWW.A.COM/y" })
    local function kw(k) return urls_of((tasks(s, { StartTime = sim.beijing(T), Keyword = k }))) end
    assert.same({ "http://a.com/x" }, kw("http://a.com/x")) -- not x1, not https, not b.com/a.com/x
    assert.same({ "https://a.com/x" }, kw("https://a.com/x"))
    assert.same({}, kw("http://a.com/"))                    -- a URL is never a prefix
    assert.same({ "http://b.com/a.com/x", "http://WWW.A.COM/y", "http://a.com/x", "http://a.com/x1",
                  "https://a.com/x" }, kw("a.com"))       -- contained, any case
    assert.same({ "http://WWW.A.COM/y" }, kw("www.a.com"))
    assert.same({ "http://b.com/a.com/x" }, kw("B.com"))
    assert.same({}, kw("c.com"))
  end)

  it("pages with Offset and Limit (default 20) over TotalCount", function()
    local urls = {}
    for i = 1, 25 do urls[i] = "http://a.com/p" .. i end
    purge(s, urls)
    local logs, total = tasks(s, { StartTime = sim.beijing(T) })
    assert.equal(25, total)
    assert.equal(20, #logs)
    assert.equal("http://a.com/p1", logs[1].Url)
    logs, total = tasks(s, { StartTime = sim.beijing(T), Offset = 20 })
    assert.equal(25, total)
    assert.same({ "http://a.com/p21", "http://a.com/p22", "http://a.com/p23", "http://a.com/p24", "http://a.com/p25" },
                urls_of(logs))
    logs = tasks(s, { StartTime = sim.beijing(T), Offset = 3, Limit = 2 })
    assert.same({ "http://a.com/p4", "http://a.com/p5" }, urls_of(logs))
    logs, total = tasks(s, { StartTime = sim.beijing(T), Offset = 25 })
    assert.same({ {}, 25 }, { logs, total })
  end)

  it("filters by Status, and on CDN by Area (global: both), per product", function()
    s:set_clock(T)
    local old = purge(s, { "http://a.com/old" }, CDN, { Area = "overseas" })
    s:set_clock(T + 0.5)
    purge(s, { "http://a.com/new" }, CDN) -- Area omitted: the domain's region, mainland
    local function q(p) p.StartTime = sim.beijing(T) return urls_of((tasks(s, p, CDN))) end
    assert.same({ "http://a.com/new", "http://a.com/old" }, q {})
    assert.same({ "http://a.com/new", "http://a.com/old" }, q { Status = "process" })
    s:set_clock(T + 1.25) -- --task-ms 1000: the first is done, the second not yet
    assert.same({ "http://a.com/old" }, q { Status = "done" })
    assert.same({ "http://a.com/new" }, q { Status = "process" })
    assert.same({}, q { Status = "fail" })
    assert.same({ "http://a.com/old" }, q { Area = "overseas" })
    assert.same({ "http://a.com/new" }, q { Area = "mainland" })
    assert.same({ "http://a.com/new", "http://a.com/old" }, q { Area = "global" })
    assert.equal("InvalidParameter.CdnParamError", call(s, "DescribePurgeTasks",
                                                         { TaskId = old, Area = "moon" }, CDN))
    -- ECDN tasks of the same account are another product's
    assert.same({ {}, 0 }, { tasks(s, { TaskId = old }) })
  end)
end)

describe("simulator --task-fail-rate", function()
  -- Purges n one-URL tasks at T, moves past --task-ms, returns the statuses by URL and the log.
  local function run(seed, rate, n)
    local s = sim.start { args = { "--rate", "0", "--seed", seed, "--task-ms", "1000", "--task-fail-rate", rate,
                                   "--fake-clock", tostring(T) }, log = true }
    finally(function() s:stop() end)
    for i = 1, n do purge(s, { "http://a.com/f" .. i }) end
    local before = {}
    for _, l in ipairs((tasks(s, { StartTime = sim.beijing(T), Limit = 1000 }))) do before[l.Url] = l.Status end
    s:advance(1)
    local after = {}
    for _, l in ipairs((tasks(s, { StartTime = sim.beijing(T), Limit = 1000 }))) do after[l.Url] = l.Status end
    return before, after, s:log_entries(), s
  end

  it("ends the drawn tasks in fail (after process), reproducibly, and marks them in the log", function()
    local before, after, log = run("5", "0.5", 40)
    local failed, done = 0, 0
    for i = 1, 40 do
      local url = "http://a.com/f" .. i
      assert.equal("process", before[url]) -- a failing task is in process like the others first
      if after[url] == "fail" then failed = failed + 1 else done = done + 1 end
      assert.is_true(after[url] == "fail" or after[url] == "done")
      assert.equal(url, log[i].urls[1])
      assert.equal(after[url] == "fail" or nil, log[i].fail) -- "fail":true only on the failing ones
    end
    assert.is_true(failed > 0 and done > 0, failed .. " failed, " .. done .. " done")
    local _, again = run("5", "0.5", 40)
    assert.same(after, again)
    local _, other = run("6", "0.5", 40)
    assert.are_not.same(after, other)
  end)

  it("fails every task at 1 and none at 0 (the default); Status = fail finds them", function()
    local _, after, _, s = run("7", "1", 5)
    for _, st in pairs(after) do assert.equal("fail", st) end
    assert.equal(5, select(2, tasks(s, { StartTime = sim.beijing(T), Status = "fail" })))
    assert.equal(0, select(2, tasks(s, { StartTime = sim.beijing(T), Status = "done" })))
    _, after = run("7", "0", 5)
    for _, st in pairs(after) do assert.equal("done", st) end
  end)
end)

describe("simulator lookup of an uncertain purge", function()
  it("finds exactly the batches applied before their connection dropped (Keyword = a URL, StartTime)", function()
    local s = sim.start { args = { "--rate", "0", "--seed", "12", "--drop-rate", "0.5", "--fake-clock", tostring(T) },
                          log = true }
    finally(function() s:stop() end)
    -- 30 batches of 3 URLs, a quarter of a second apart; about half of the answers are dropped,
    -- half of those after the purge was applied and logged.
    local batches = {}
    for b = 1, 30 do
      s:advance(0.25)
      local urls = { "https://a.com/b" .. b .. "/1", "https://a.com/b" .. b .. "/2", "https://a.com/b" .. b .. "/3" }
      local first_send = s:now()
      local _, _, decoded = sim.raw_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = urls },
                                            { timestamp = math.floor(first_send) })
      batches[b] = { urls = urls, first_send = first_send, task_id = decoded and decoded.Response.TaskId }
    end
    local logged = {}
    for _, e in ipairs(s:log_entries()) do logged[e.urls[1]] = e.task_id end
    s:advance(60)
    local uncertain_applied, uncertain_lost = 0, 0
    for b, batch in ipairs(batches) do
      -- The lookup an engine makes; its own answer may be dropped too: ask again (the seeded faults
      -- make this deterministic).
      local decoded
      for _ = 1, 50 do
        _, _, decoded = sim.raw_request(s.port, "DescribePurgeTasks", cjson.encode {
          Keyword = batch.urls[1], StartTime = sim.beijing(batch.first_send - 1) }, { timestamp = math.floor(s:now()) })
        if decoded then break end
      end
      local r = assert(decoded, "lookup never answered").Response
      local want = logged[batch.urls[1]]
      if want then
        assert.equal(1, r.TotalCount, "batch " .. b)
        assert.equal(want, r.PurgeLogs[1].TaskId)
        assert.equal(batch.urls[1], r.PurgeLogs[1].Url)
        assert.equal("done", r.PurgeLogs[1].Status)
        if batch.task_id then
          assert.equal(batch.task_id, want)
        else
          uncertain_applied = uncertain_applied + 1
        end
      else
        assert.equal(0, r.TotalCount, "batch " .. b)
        assert.is_nil(batch.task_id)
        uncertain_lost = uncertain_lost + 1
      end
    end
    -- both kinds of uncertain outcome occurred, so the spec proves something
    assert.is_true(uncertain_applied > 0 and uncertain_lost > 0, uncertain_applied .. "/" .. uncertain_lost)
  end)
end)
