-- Simulator service rules: batch limit, daily quota across calls, URL length,
-- wildcard hosts, scheme, domain list, rate limit, each with its ECDN and CDN
-- error name; PurgePathCache, DescribePurgeTasks, DescribePurgeQuota, TaskId.
local sim = require "support.sim"

local cjson = require "cjson"

local function urls_body(urls, extra)
  local t = { Urls = urls }
  for k, v in pairs(extra or {}) do t[k] = v end
  return cjson.encode(t)
end

-- Returns the error code (nil on success) and the Response.
local function call(s, action, body, opts)
  local status, raw, decoded = sim.raw_request(s.port, action, body, opts)
  assert.equal(200, status, raw)
  assert.is_table(decoded, raw)
  local err = decoded.Response.Error
  return err and err.Code, decoded.Response
end

local function n_urls(n, prefix)
  local t = {}
  for i = 1, n do t[i] = (prefix or "http://a.com/f") .. i end
  return t
end

local CDN = { service = "cdn" }

describe("simulator purge rules", function()
  local s
  setup(function()
    s = sim.start { args = { "--rate", "0", "--seed", "3", "--batch", "3", "--quota", "5", "--url-max", "40",
                             "--domains", "a.com,B.com", "--path-batch", "2", "--path-quota", "3",
                             "--task-ms", "1000", "--fake-clock", "now" }, log = true }
  end)
  teardown(function() s:stop() end)

  it("hands out TaskIds in the service's format: <unix time>-<8 lower-case letters/digits>", function()
    local now = s:set_clock(os.time() + 0.75) -- the simulator's (fake) clock
    local code, resp = call(s, "PurgeUrlsCache", urls_body { "http://a.com/taskid" }, CDN)
    assert.is_nil(code)
    local t, suffix = resp.TaskId:match("^(%d+)%-([a-z0-9]+)$")
    assert.equal(8, #suffix)
    assert.equal(math.floor(now), tonumber(t))
  end)

  it("limits URLs per request (batch)", function()
    assert.is_nil(call(s, "PurgeUrlsCache", urls_body(n_urls(3, "http://a.com/batch")), { service = "cdn" }))
    assert.equal("LimitExceeded.EcdnPurgeUrlExceedBatchLimit", call(s, "PurgeUrlsCache", urls_body(n_urls(4))))
    assert.equal("LimitExceeded.CdnPurgeUrlExceedBatchLimit", call(s, "PurgeUrlsCache", urls_body(n_urls(4)), CDN))
  end)

  it("counts the daily quota in URLs across calls, per service and per CDN area", function()
    assert.is_nil(call(s, "PurgeUrlsCache", urls_body(n_urls(3))))
    local code, resp = call(s, "PurgeUrlsCache", urls_body(n_urls(3)))
    assert.equal("LimitExceeded.EcdnPurgeUrlExceedDayLimit", code)
    assert.truthy(resp.Error.Message:find("5", 1, true))
    assert.is_nil(call(s, "PurgeUrlsCache", urls_body(n_urls(2)))) -- the refused call used nothing
    assert.equal("LimitExceeded.EcdnPurgeUrlExceedDayLimit", call(s, "PurgeUrlsCache", urls_body(n_urls(1))))
    local _, quota = call(s, "DescribePurgeQuota", "{}")
    assert.same({ Batch = 3, Total = 5, Available = 0 }, quota.UrlPurge)
    -- CDN has its own quota, one per area; the TaskId and batch tests above used 4 mainland URLs.
    assert.equal("LimitExceeded.CdnPurgeUrlExceedDayLimit", call(s, "PurgeUrlsCache", urls_body(n_urls(2)), CDN))
    assert.is_nil(call(s, "PurgeUrlsCache", urls_body(n_urls(1), { Area = "mainland" }), CDN))
    assert.is_nil(call(s, "PurgeUrlsCache", urls_body(n_urls(3), { Area = "overseas" }), CDN))
    _, quota = call(s, "DescribePurgeQuota", "{}", CDN)
    assert.same({ { Batch = 3, Total = 5, Available = 0, Area = "mainland" },
                  { Batch = 3, Total = 5, Available = 2, Area = "overseas" } }, quota.UrlPurge)
    assert.same({ { Batch = 2, Total = 3, Available = 3, Area = "mainland" },
                  { Batch = 2, Total = 3, Available = 3, Area = "overseas" } }, quota.PathPurge)
    assert.equal("InvalidParameter.CdnParamError",
                 call(s, "PurgeUrlsCache", urls_body(n_urls(1), { Area = "moon" }), CDN))
  end)

  it("checks each URL: length, scheme, wildcard host, domain list (before using quota)", function()
    local cases = {
      { "http://a.com/" .. string.rep("x", 28), nil },  -- exactly 41 bytes is too long, 40 is fine
      { "http://a.com/" .. string.rep("x", 27), "ok" },
      { "ftp://a.com/x", "param" },
      { "a.com/x", "param" },
      { "http:///x", "param" },
      { "http://*.a.com/x", "wildcard" },
      { "http://c.com/x", "domain" },
    }
    local names = {
      ecdn = { [true] = "InvalidParameter.EcdnUrlExceedLength", param = "InvalidParameter.EcdnParamError",
               wildcard = "InvalidParameter.EcdnPurgeWildcardNotAllowed",
               domain = "ResourceNotFound.EcdnDomainNotExists" },
      cdn = { [true] = "InvalidParameter.CdnUrlExceedLength", param = "InvalidParameter.CdnParamError",
              wildcard = "InvalidParameter.CdnPurgeWildcardNotAllowed", domain = "ResourceNotFound.CdnHostNotExists" },
    }
    for _, service in ipairs { "ecdn", "cdn" } do
      for _, c in ipairs(cases) do
        if c[2] ~= "ok" then
          local code = call(s, "PurgeUrlsCache", urls_body { c[1] }, { service = service })
          assert.equal(names[service][c[2] or true], code, service .. " " .. c[1])
        end
      end
      assert.equal(names[service].param, call(s, "PurgeUrlsCache", urls_body(cjson.empty_array or {}),
                                              { service = service }))
    end
    -- Not UTF-8, or control bytes: refused, and the answer echoes no invalid bytes.
    for _, u in ipairs { "http://a.com/\255\254", "http://a.com/a\tb", "http://a.com/\0" } do
      local status, raw, decoded = sim.raw_request(s.port, "PurgeUrlsCache", '{"Urls":["' .. u:gsub("[%z\t]", {
        ["\0"] = "\\u0000", ["\t"] = "\\t" }) .. '"]}')
      assert.equal(200, status)
      assert.equal("InvalidParameter.EcdnParamError", decoded.Response.Error.Code, raw)
      assert.falsy(raw:find("[\128-\255]"), raw)
    end
    local _, raw = sim.raw_request(s.port, "PurgeUrlsCache", '{"Urls":["http://a.com/"],"\255x":1}')
    assert.truthy(raw:find("`?x`", 1, true), raw)
    -- A valid URL (any case of the listed domain, with a port) passes the checks;
    -- here the quota is used up, so the answer is the day limit, not a URL error.
    assert.equal("LimitExceeded.EcdnPurgeUrlExceedDayLimit",
                 call(s, "PurgeUrlsCache", urls_body { "HTTPS://b.COM:8443/" .. string.rep("x", 20) }))
  end)

  it("purges directories with PurgePathCache: FlushType, batch and daily limits, log entry", function()
    local code, resp = call(s, "PurgePathCache", cjson.encode { Paths = { "http://a.com/dir/" }, FlushType = "delete" })
    assert.is_nil(code)
    local logged
    for _, e in ipairs(s:log_entries()) do
      if e.task_id == resp.TaskId then logged = e end
    end
    assert.same({ "http://a.com/dir/" }, logged.paths)
    assert.equal("PurgePathCache", logged.action)
    assert.equal("delete", logged.flush_type)
    assert.equal("MissingParameter", call(s, "PurgePathCache", cjson.encode { Paths = { "http://a.com/d/" } }))
    assert.equal("InvalidParameter.EcdnParamError",
                 call(s, "PurgePathCache", cjson.encode { Paths = { "http://a.com/d/" }, FlushType = "all" }))
    assert.equal("LimitExceeded.EcdnPurgePathExceedBatchLimit",
                 call(s, "PurgePathCache", cjson.encode { Paths = n_urls(3, "http://a.com/d"), FlushType = "flush" }))
    assert.equal("LimitExceeded.CdnPurgePathExceedBatchLimit",
                 call(s, "PurgePathCache", cjson.encode { Paths = n_urls(3, "http://a.com/d"), FlushType = "flush" },
                      CDN))
    assert.is_nil(call(s, "PurgePathCache", cjson.encode { Paths = n_urls(2, "http://a.com/d"), FlushType = "flush" }))
    assert.equal("LimitExceeded.EcdnPurgePathExceedDayLimit",
                 call(s, "PurgePathCache", cjson.encode { Paths = { "http://a.com/e/" }, FlushType = "flush" }))
  end)

  it("reports tasks with DescribePurgeTasks, moving from process to done after --task-ms", function()
    s:set_clock(os.time() + 0.5) -- exact binary fractions from here: no rounding at the boundary
    local code, resp = call(s, "PurgeUrlsCache", urls_body({ "http://a.com/t1", "http://a.com/t2" },
                                                           { Area = "overseas" }), CDN)
    assert.is_nil(code)
    local task = resp.TaskId
    local _, tasks = call(s, "DescribePurgeTasks", cjson.encode { TaskId = task }, CDN)
    assert.equal(2, tasks.TotalCount)
    local seen = {}
    for _, t in ipairs(tasks.PurgeLogs) do
      assert.equal(task, t.TaskId)
      assert.equal("process", t.Status)
      assert.equal("url", t.PurgeType)
      assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", t.CreateTime)
      seen[t.Url] = true
    end
    assert.same({ ["http://a.com/t1"] = true, ["http://a.com/t2"] = true }, seen)
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { TaskId = task, Status = "done" }, CDN)
    assert.equal(0, tasks.TotalCount)
    s:advance(0.75) -- 750 of the 1000 ms: still in process
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { TaskId = task, Status = "done" }, CDN)
    assert.equal(0, tasks.TotalCount)
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { TaskId = task, Status = "process" }, CDN)
    assert.equal(2, tasks.TotalCount)
    s:advance(0.25) -- exactly --task-ms after the purge: done
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { TaskId = task, Status = "done" }, CDN)
    assert.equal(2, tasks.TotalCount)
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { TaskId = task, Status = "process" }, CDN)
    assert.equal(0, tasks.TotalCount)
    -- Other services' tasks are not visible; filters and paging by time range.
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { TaskId = task })
    assert.equal(0, tasks.TotalCount)
    local start = os.date("!%Y-%m-%d %H:%M:%S", os.time() - 3600 + 8 * 3600) -- Beijing time
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { StartTime = start, Keyword = "http://a.com/t2", Limit = 5 },
                    CDN)
    assert.equal(1, tasks.TotalCount)
    assert.equal("http://a.com/t2", tasks.PurgeLogs[1].Url)
    _, tasks = call(s, "DescribePurgeTasks", cjson.encode { StartTime = start, PurgeType = "url", Limit = 1 }, CDN)
    assert.is_true(tasks.TotalCount >= 3)
    assert.equal(1, #tasks.PurgeLogs)
    assert.equal("InvalidParameter.EcdnParamError", call(s, "DescribePurgeTasks", "{}")) -- TaskId or StartTime
    assert.equal("InvalidParameter.EcdnParamError", call(s, "DescribePurgeTasks",
                                                         cjson.encode { StartTime = "yesterday" }))
  end)
end)

describe("simulator rate limit", function()
  local OTHER = { secret_id = "AKIDOTHER000000000000000000000000000", secret_key = "otherkey" }
  local function start(extra)
    local args = { "--rate", "3", "--seed", "4", "--fake-clock", "now",
                   "--secret", sim.DEFAULT_SECRET_ID .. ":" .. sim.DEFAULT_SECRET_KEY,
                   "--secret", OTHER.secret_id .. ":" .. OTHER.secret_key }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    return sim.start { args = args }
  end

  -- One request on c: false when accepted, else the error code (and message).
  local function code(c, opts)
    local status, raw, decoded = c:request("PurgeUrlsCache", urls_body { "http://a.com/r" }, opts)
    assert.equal(200, status, raw)
    local e = decoded.Response.Error
    return e and e.Code or false, e and e.Message
  end

  -- Sends n requests at the simulator's current time; returns their outcomes.
  local function burst(c, n, opts)
    local got = {}
    for i = 1, n do got[i] = code(c, opts) end
    return got
  end

  local R = "RequestLimitExceeded"

  it("sliding (default): refuses a request when N were accepted in the last 1,000 ms, per SecretId", function()
    local s = start()
    finally(function() s:stop() end)
    local c = assert(sim.connect(s.port))
    finally(function() c:close() end)
    local t0 = os.time() + 0.5 -- half-way into a second, so a fixed window would restart at t0 + 0.5
    s:set_clock(t0)
    assert.same({ false, false, false, R }, burst(c, 4))
    assert.is_false(code(c, OTHER)) -- another SecretId has its own window
    s:set_clock(t0 + 0.5) -- a new second of the clock, but the 3 are 500 ms old: still refused
    assert.equal(R, code(c))
    s:set_clock(t0 + 0.875)
    assert.equal(R, code(c))
    s:set_clock(t0 + 1) -- exactly 1,000 ms after them: they no longer count; the 3 refusals never did
    assert.same({ false, false, false, R }, burst(c, 4))
    -- The window slides with each accepted request: the three from t0+1 hold it until t0+2...
    s:set_clock(t0 + 1.25)
    assert.equal(R, code(c))
    -- ...where they expire together.
    s:set_clock(t0 + 1.75)
    assert.equal(R, code(c))
    s:set_clock(t0 + 2)
    assert.same({ false }, burst(c, 1))
    s:set_clock(t0 + 2.25)
    assert.same({ false, false, R }, burst(c, 3)) -- 2 free slots (t0+2 holds one)
    s:set_clock(t0 + 3) -- the one from t0+2 expires; those from t0+2.25 hold two slots
    assert.same({ false, R }, burst(c, 2))
    local _, message = code(c)
    assert.truthy(message:find("`3`", 1, true), message) -- the limit, in the service's wording
    -- Setting the clock back before the last accepted request clears the window.
    s:set_clock(t0 - 100)
    assert.same({ false, false, false, R }, burst(c, 4))
  end)

  it("--rate-window fixed keeps the old behaviour: N per second of the clock, refused ones counted", function()
    local s = start { "--rate-window", "fixed" }
    finally(function() s:stop() end)
    local c = assert(sim.connect(s.port))
    finally(function() c:close() end)
    local second = os.time()
    s:set_clock(second + 0.5)
    assert.same({ false, false, false, R }, burst(c, 4))
    assert.is_false(code(c, OTHER))
    s:set_clock(second + 0.875) -- later in the same second: still refused
    local got, message = code(c)
    assert.equal(R, got)
    assert.truthy(message:find("`5`", 1, true), message) -- its 5th request this second: refusals count
    s:set_clock(second + 1) -- the next second: 3 more, 500 ms after the first 3 (sliding would refuse)
    assert.same({ false, false, false, R }, burst(c, 4))
  end)

  it("--rate 0 turns the limit off", function()
    local s = start { "--rate", "0" }
    finally(function() s:stop() end)
    local c = assert(sim.connect(s.port))
    finally(function() c:close() end)
    s:set_clock(os.time())
    for _, got in ipairs(burst(c, 50)) do assert.is_false(got) end
  end)
end)
