-- client:purge_all and client:wait against the simulator: batches,
-- accounting, the rate limiter, retries, uncertain outcomes resolved by
-- lookup, the daily quota, the quota check, deadlines and progress.
-- Nothing here asserts on timing.
local ecdn = require "ecdn"
local limiter = require "ecdn.limiter"
local proc = require "support.proc"
local sim = require "support.sim"

local function client(s, extra)
  local o = { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, timeout = 10 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(ecdn.client(o))
end

local function urls(n, tag)
  local t = {}
  for i = 1, n do t[i] = "https://www.example.com/" .. tag .. "/" .. i end
  return t
end


-- Every distinct input URL in exactly one of tasks[*].urls or errors[*].urls.
local function accounted(report)
  local where = {}
  for _, t in ipairs(report.tasks) do
    for _, u in ipairs(t.urls) do
      assert(where[u] == nil, "URL twice in the report: " .. tostring(u))
      where[u] = "task"
    end
  end
  for _, e in ipairs(report.errors) do
    for _, u in ipairs(e.urls) do
      assert(where[u] == nil, "URL twice in the report: " .. tostring(u))
      where[u] = "error"
    end
  end
  return where
end

describe("purge_all", function()
  it("batches, dedupes, refuses bad URLs by position, and accounts for every URL once", function()
    local s = sim.start { args = { "--rate", "0", "--quota", "1000000" }, log = true }
    finally(function() s:stop() end)
    local list = urls(2500, "acct")
    list[#list + 1] = list[7]                  -- a repeat
    list[#list + 1] = "www.example.com/noscheme" -- index 2502
    list[#list + 1] = 42                         -- index 2503
    list[#list + 1] = "https://@/nohost"         -- index 2504
    local c = client(s, { rate = 0 })
    local rep = assert(c:purge_all(list, { batch = 300 }))
    assert.equal(2500, rep.ok)
    assert.equal(3, rep.failed)
    assert.equal(1, rep.deduped)
    assert.equal(0, rep.duplicates)
    assert.equal(9, #rep.tasks)    -- ceil(2500 / 300)
    assert.equal(9, rep.requests)
    assert.equal(0, rep.retries)
    for i, t in ipairs(rep.tasks) do
      assert.is_true(#t.urls <= 300)
      assert.matches("^%d+%-%w+$", t.task_id, nil, "task " .. i)
      assert.is_string(t.request_id)
    end
    local where = accounted(rep)
    for i = 1, 2500 do assert.equal("task", where[list[i]]) end
    local by_index = {}
    for _, e in ipairs(rep.errors) do
      assert.equal("client", e.err.kind)
      assert.is_false(e.err.sent)
      by_index[e.err.index] = e.err.problem
    end
    assert.same({ [2502] = "scheme", [2503] = "not_string", [2504] = "no_host" }, by_index)
    -- The service saw each URL once, under the task the report names.
    local count = s:url_counts()
    for i = 1, 2500 do assert.equal(1, count[list[i]]) end
    local task_of = {}
    for _, e in ipairs(s:log_entries()) do task_of[e.urls[1]] = e.task_id end
    for _, t in ipairs(rep.tasks) do assert.equal(task_of[t.urls[1]], t.task_id) end
  end)

  it("dedupe = false sends a repeated URL again", function()
    local s = sim.start { args = { "--rate", "0" }, log = true }
    finally(function() s:stop() end)
    local rep = assert(client(s, { rate = 0 }):purge_all({ "https://www.example.com/r", "https://www.example.com/r" },
      { dedupe = false, batch = 1 }))
    assert.equal(2, rep.ok)
    assert.equal(0, rep.deduped)
    assert.equal(2, s:url_counts()["https://www.example.com/r"])
  end)

  it("keeps every 1,000 ms window at or under the rate (the limiter's own record)", function()
    local s = sim.start { args = { "--rate", "20" }, log = true }
    finally(function() s:stop() end)
    -- A store that records the times of its grants.
    local inner = limiter.memory()
    local grants = {}
    local store = {
      take = function(_, now, rate, window)
        local w = inner:take(now, rate, window)
        if w == 0 then grants[#grants + 1] = now end
        return w
      end,
      block = function(_, t) inner:block(t) end,
    }
    local lim = limiter.new { rate = 20, store = store, clock = require("ecdn.core").now }
    local c = client(s, { limiter = lim })
    local rep = assert(c:purge_all(urls(50, "rate"), { batch = 1, concurrency = 8 }))
    assert.equal(50, rep.ok)
    assert.is_true(#grants >= 50)
    local j = 1
    for i = 1, #grants do
      while grants[i] - grants[j] >= 1.0 do j = j + 1 end
      assert.is_true(i - j + 1 <= 20, "more than 20 grants in one second")
    end
  end)

  it("retries what the service failed, and purges nothing twice", function()
    local s = sim.start { args = { "--rate", "0", "--fail-rate", "0.3", "--seed", "11" }, log = true }
    finally(function() s:stop() end)
    local list = urls(400, "retry")
    local rep = assert(client(s, { rate = 0 }):purge_all(list, { batch = 10, max_backoff = 0.05, retries = 20,
                                                                       lookup_settle = 0.6 }))
    assert.equal(400, rep.ok)
    assert.same({}, rep.errors)
    assert.is_true(rep.retries > 0)
    local count = s:url_counts()
    for _, u in ipairs(list) do assert.equal(1, count[u], u) end
    accounted(rep)
  end)

  it("resolves uncertain batches by lookup: dropped after commit, never purged twice", function()
    local s = sim.start { args = { "--rate", "0", "--drop-rate", "0.3", "--garbage-rate", "0.1", "--seed", "5" },
                          log = true }
    finally(function() s:stop() end)
    local list = urls(600, "uncertain")
    local rep = assert(client(s, { rate = 0 }):purge_all(list, { batch = 10, max_backoff = 0.05, retries = 20,
                                                                       lookup_settle = 0.6 }))
    assert.equal(600, rep.ok)
    assert.same({}, rep.errors)
    assert.equal(0, rep.duplicates)
    -- Some batches were found applied by lookup: more requests than batches plus retries.
    assert.is_true(rep.requests > 60 + rep.retries, "no lookup happened")
    local count = s:url_counts()
    for _, u in ipairs(list) do assert.equal(1, count[u], u) end
    accounted(rep)
  end)

  it("stops at the daily quota: the rest go to errors unsent, with that error", function()
    local s = sim.start { args = { "--rate", "0", "--quota", "250" }, log = true }
    finally(function() s:stop() end)
    local list = urls(1000, "day")
    local rep = assert(client(s, { rate = 0 }):purge_all(list, { batch = 100, concurrency = 1 }))
    assert.equal(200, rep.ok)
    assert.equal(800, rep.failed)
    local sent, unsent = 0, 0
    for _, e in ipairs(rep.errors) do
      assert.equal("LimitExceeded.EcdnPurgeUrlExceedDayLimit", e.err.code)
      assert.is_false(e.err.retryable)
      if e.err.sent then sent = sent + #e.urls else unsent = unsent + #e.urls end
    end
    assert.equal(100, sent)   -- the batch the service refused
    assert.equal(700, unsent) -- never sent
    assert.equal(3, rep.requests)
    accounted(rep)
  end)

  it("quota_check refuses a job larger than what is available, before sending anything", function()
    local s = sim.start { args = { "--rate", "0", "--quota", "100", "--batch", "40" }, log = true }
    finally(function() s:stop() end)
    local c = client(s, { rate = 0 })
    local rep, err = c:purge_all(urls(150, "quota"), { quota_check = true })
    assert.is_nil(rep)
    assert.equal("ClientError.QuotaExceeded", err.code)
    assert.is_false(err.sent)
    assert.truthy(err.message:find("150", 1, true))
    assert.same({}, s:log_entries())
    -- Within the quota: the batch size comes from DescribePurgeQuota's Batch.
    rep = assert(c:purge_all(urls(90, "quota-ok"), { quota_check = true }))
    assert.equal(90, rep.ok)
    assert.equal(3, #rep.tasks) -- 40 + 40 + 10
    assert.equal(4, rep.requests) -- the quota lookup counts
  end)

  it("a deadline already passed sends nothing and says why", function()
    local s = sim.start { args = { "--rate", "0" }, log = true }
    finally(function() s:stop() end)
    local rep = assert(client(s, { rate = 0 }):purge_all(urls(30, "deadline"), { deadline = 0, batch = 10 }))
    assert.equal(0, rep.ok)
    assert.equal(30, rep.failed)
    assert.equal("ClientError.Deadline", rep.errors[1].err.code)
    assert.is_false(rep.errors[1].err.sent)
    assert.same({}, s:log_entries())
  end)

  it("refused credentials: nil, err (nothing could be sent)", function()
    local s = sim.start { args = { "--rate", "0" }, log = true }
    finally(function() s:stop() end)
    local c = client(s, { secret_key = "wrong-key", rate = 0 })
    local rep, err = c:purge_all(urls(50, "auth"), { batch = 10 })
    assert.is_nil(rep)
    assert.equal("AuthFailure.SignatureFailure", err.code)
  end)

  it("reports progress: done only grows, and the last call has the totals", function()
    local s = sim.start { args = { "--rate", "0" } }
    finally(function() s:stop() end)
    local calls = {}
    local rep = assert(client(s, { rate = 0 }):purge_all(urls(500, "progress"), {
      batch = 50, on_progress = function(p) calls[#calls + 1] = p end }))
    assert.is_true(#calls >= 1)
    for i = 2, #calls do assert.is_true(calls[i].done >= calls[i - 1].done) end
    local last = calls[#calls]
    assert.same({ 500, 0, 500, rep.requests, rep.retries },
      { last.done, last.failed, last.total, last.requests, last.retries })
    assert.is_number(last.elapsed)
  end)

  it("wait: polls DescribePurgeTasks until each task is done or failed", function()
    local s = sim.start { args = { "--rate", "0", "--fake-clock", "now", "--task-ms", "1000",
                                   "--task-fail-rate", "0.5", "--seed", "3" } }
    finally(function() s:stop() end)
    local c = client(s, { rate = 0, clock = function() return s:now() end })
    local rep = assert(c:purge_all(urls(60, "wait"), { batch = 10 }))
    local ids = {}
    for _, t in ipairs(rep.tasks) do ids[#ids + 1] = t.task_id end
    local st = c:wait(ids, { timeout = 0, interval = 0 })
    for _, id in ipairs(ids) do assert.equal("process", st[id]) end
    s:advance(1)
    st = c:wait(ids, { timeout = 0, interval = 0 })
    local seen = {}
    for _, id in ipairs(ids) do
      assert.truthy(st[id] == "done" or st[id] == "fail", st[id])
      seen[st[id]] = true
    end
    assert.is_true(seen.done and seen.fail, "the seed should give both outcomes")
    assert.same({ ["1-unknown"] = "unknown" }, c:wait({ "1-unknown" }, { timeout = 0, interval = 0 }))
  end)

  it("refuses bad options at the caller's line", function()
    local c = assert(ecdn.client { secret_id = "AKIDx", secret_key = "k", endpoint = "http://127.0.0.1:1" })
    for opt, v in pairs { batch = 0, concurrency = 1.5, retries = -1, rate = "20", bogus = 1, lookup_settle = -1 } do
      local ok, msg = pcall(function() c:purge_all({ "https://www.example.com/a" }, { [opt] = v }) end)
      assert.is_false(ok)
      assert.truthy(msg:find("^spec/bulk_spec%.lua:%d+: ecdn%.client:purge_all: "), msg)
      assert.truthy(msg:find(opt, 1, true), msg)
    end
    local ok, msg = pcall(function() c:purge_all("x") end)
    assert.is_false(ok)
    assert.truthy(msg:find("urls must be a table", 1, true))
  end)

  it("dedupe = false: a lookup never credits a batch with another batch's task", function()
    local s = sim.start { args = { "--rate", "0", "--seed", "1", "--drop-rate", "0.25", "--fail-rate", "0.2",
                                   "--garbage-rate", "0.1" }, log = true }
    finally(function() s:stop() end)
    local list = {}
    for i = 1, 150 do list[i] = "https://www.example.com/nodedupe/" .. (i % 7 == 1 and "hot" or i) end
    local rep = assert(client(s, { rate = 0, timeout = 2 }):purge_all(list,
      { batch = 7, concurrency = 6, max_backoff = 0.02, retries = 3, dedupe = false, lookup_settle = 0.6 }))
    -- Every URL of every task the report names was applied under that very task.
    local in_task = {}
    for _, e in ipairs(s:log_entries()) do
      for _, u in ipairs(e.urls) do in_task[e.task_id .. " " .. u] = true end
    end
    local seen_task = {}
    for _, t in ipairs(rep.tasks) do
      assert.is_nil(seen_task[t.task_id], "a TaskId credited twice: " .. t.task_id)
      seen_task[t.task_id] = true
      for _, u in ipairs(t.urls) do assert.is_true(in_task[t.task_id .. " " .. u] == true, u) end
    end
    assert.equal(150, rep.ok + rep.failed)
  end)

  it("lookups use the service's clock: 200 s slow, no applied batch missed, no old task taken", function()
    -- seed 14: the first send is applied and its answer dropped; seed 7 (after an earlier purge of the
    -- same URL): the first send is dropped before the service. The client's clock is 200 s slow, too
    -- little for the service to refuse (300 s), so nothing corrects it but the answers' Date.
    for _, case in ipairs { { seed = "14" }, { seed = "7", earlier = true } } do
      local s = sim.start { args = { "--rate", "0", "--seed", case.seed, "--drop-rate", "0.5",
                                     "--fake-clock", "now" }, log = true }
      local t = s:now()
      local c = client(s, { rate = 0, clock = function() return t - 200 end })
      local url = "https://www.example.com/skewed"
      local old
      if case.earlier then
        old = assert(c:purge { url }).task_id
        s:advance(170)
        t = t + 170
      end
      local rep = assert(c:purge_all({ url }, { retries = 6, max_backoff = 0.02, lookup_settle = 0.6 }))
      local applied = {}
      for _, e in ipairs(s:log_entries()) do applied[#applied + 1] = e.task_id end
      s:stop()
      assert.equal(1, rep.ok, "seed " .. case.seed)
      assert.are_not.equal(old, rep.tasks[1].task_id, "an old task was credited")
      assert.equal(rep.tasks[1].task_id, applied[#applied], "seed " .. case.seed)
      assert.equal(case.earlier and 2 or 1, #applied, "purged twice (seed " .. case.seed .. ")")
    end
  end)

  it("on_progress raising: the error reaches the caller once nothing is in flight; the client works on", function()
    local s = sim.start { args = { "--rate", "0", "--delay-ms", "50" } }
    finally(function() s:stop() end)
    local c = client(s, { rate = 0 })
    local ok, msg = pcall(c.purge_all, c, urls(200, "raise"), { batch = 10, on_progress = function(p)
      if p.requests > 0 then error("my callback failed", 0) end
    end })
    assert.is_false(ok)
    assert.equal("my callback failed", msg)
    assert(c:purge { "https://www.example.com/after-raise" })
    assert(c:call("DescribePurgeQuota", {}))
  end)

  it("after the daily limit stops a job, only what went out says sent = true", function()
    local s = sim.start { args = { "--quota", "2" } }
    finally(function() s:stop() end)
    local rep = assert(client(s, { rate = 2 }):purge_all(urls(8, "daysent"), { batch = 1 }))
    assert.equal(2, rep.ok)
    local sent = 0
    for _, e in ipairs(rep.errors) do
      if e.err.sent then sent = sent + #e.urls else assert.truthy(e.err.message:find("^not sent"), e.err.message) end
    end
    assert.equal(rep.requests - rep.ok, sent) -- one URL a request: each refused request is one sent URL
  end)

  it("the job's rate: a whole number >= 0, 0 meaning no limit of its own", function()
    local s = sim.start { args = { "--rate", "0" } }
    finally(function() s:stop() end)
    local c = client(s, { rate = 0 })
    assert.equal(3, assert(c:purge_all(urls(3, "rate0"), { rate = 0, batch = 1 })).ok)
    for _, v in ipairs { 2.5, -1 } do
      local ok, msg = pcall(function() c:purge_all(urls(1, "rate-bad"), { rate = v }) end)
      assert.is_false(ok)
      assert.truthy(msg:find("^spec/bulk_spec%.lua:%d+: ecdn%.client:purge_all: option 'rate'"), msg)
    end
  end)

  it("one URL the service refuses (its domain) fails alone; the rest of its batch is purged", function()
    local s = sim.start { args = { "--rate", "0", "--domains", "www.example.com" }, log = true }
    finally(function() s:stop() end)
    local list = urls(1000, "poison")
    list[500] = "https://typo.example.org/poison/500"
    local rep = assert(client(s, { rate = 0 }):purge_all(list))
    assert.equal(999, rep.ok)
    assert.equal(1, rep.failed)
    assert.same({ list[500] }, rep.errors[1].urls)
    assert.equal("ResourceNotFound.EcdnDomainNotExists", rep.errors[1].err.code)
    assert.is_true(rep.errors[1].err.sent)
    assert.is_false(rep.errors[1].err.retryable)
    accounted(rep)
    local count = s:url_counts()
    for i, u in ipairs(list) do if i ~= 500 then assert.equal(1, count[u], u) end end
  end)

  it("an account with a smaller per-request limit: the refused batch goes in halves, later ones no larger", function()
    local s = sim.start { args = { "--rate", "0", "--batch", "500" }, log = true }
    finally(function() s:stop() end)
    local list = urls(1200, "halves")
    local rep = assert(client(s, { rate = 0 }):purge_all(list, { concurrency = 1 }))
    assert.equal(1200, rep.ok)
    assert.same({}, rep.errors)
    assert.equal(4, rep.requests) -- 1000 refused, 500 + 500, then 200
    for _, t in ipairs(rep.tasks) do assert.is_true(#t.urls <= 500) end
    accounted(rep)
  end)

  it("100,000 URLs stay under 64 MiB peak RSS for the whole process", function()
    -- Under AddressSanitizer (make asan) memory is ASan's (shadow, quarantine), not the program's.
    if os.getenv("ASAN_OPTIONS") then
      pending("peak RSS is not the program's under AddressSanitizer")
      return
    end
    local s = sim.start { args = { "--rate", "0", "--quota", "1000000" } }
    finally(function() s:stop() end)
    local script = [[
      local ecdn = require "ecdn"
      local c = assert(ecdn.client { secret_id = arg[1], secret_key = arg[2], endpoint = arg[3], rate = 0 })
      local list = {}
      for i = 1, 100000 do list[i] = "https://www.example.com/memory/" .. i end
      local rep = assert(c:purge_all(list))
      local status = io.open("/proc/self/status"):read("*a")
      io.write(rep.ok, " ", status:match("VmHWM:%s*(%d+)"), "\n")
    ]]
    local path = proc.tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local out = proc.run(proc.env .. " " .. proc.lua .. " " .. path .. " "
      .. proc.quote(s.secret_id) .. " " .. proc.quote(s.secret_key) .. " " .. s.url)
    os.remove(path)
    local ok, hwm = out:match("^(%d+) (%d+)")
    assert.equal("100000", ok, out)
    assert.is_true(tonumber(hwm) < 64 * 1024, "peak RSS " .. tostring(hwm) .. " kB")
  end)
end)

-- Orders of events the simulator cannot be made to give on purpose: a
-- scripted service (spec/support/fake_bulk.lua).
describe("purge_all against a scripted service", function()
  local fake = require "support.fake_bulk"
  local A, B = "https://www.example.com/s/a", "https://www.example.com/s/b"

  local function count(log, action, key, value)
    local n = 0
    for _, r in ipairs(log) do
      if r.action == action and (not key or r.params[key] == value) then n = n + 1 end
    end
    return n
  end

  -- Both verifications of one task in flight at once.
  local function two_verifies(pending)
    local n = 0
    for _, p in ipairs(pending) do if p.params.TaskId then n = n + 1 end end
    return n >= 2
  end

  it("dedupe = false: two batches verifying the same task at once credit it once", function()
    -- Two batches {a, b}, both answers lost; the service applied one of them (T1).
    local sends = 0
    local ok, rep, _, log = fake.run({ A, B, A, B }, { batch = 2, dedupe = false, concurrency = 2, max_backoff = 0 },
      function(action, params)
        if action == "PurgeUrlsCache" then
          sends = sends + 1
          if sends <= 2 then return nil, fake.DROPPED end
          return fake.answer { TaskId = "T2" }
        end
        local answer = fake.logs { { TaskId = "T1", Url = A }, { TaskId = "T1", Url = B } }
        if params.TaskId then return answer, nil, two_verifies end
        return answer
      end)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, count(log, "DescribePurgeTasks", "TaskId", "T1")) -- the race happened
    assert.equal(4, rep.ok)
    assert.equal(2, #rep.tasks)
    assert.are_not.equal(rep.tasks[1].task_id, rep.tasks[2].task_id)
    assert.equal(3, sends) -- the batch T1 was not this one's went again
  end)
end)

describe("purge_all against a scripted service: a TaskId answered twice", function()
  local fake = require "support.fake_bulk"

  it("is credited once; the second batch is reported with its outcome unknown", function()
    local ok, rep = fake.run({ "https://www.example.com/t/1", "https://www.example.com/t/2" },
      { batch = 1, concurrency = 1 }, function() return fake.answer { TaskId = "T1" } end)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, rep.ok)
    assert.equal(1, #rep.tasks)
    assert.equal(1, rep.failed)
    local err = rep.errors[1].err
    assert.is_true(err.unknown)
    assert.is_true(err.sent)
    assert.is_false(err.retryable)
    assert.truthy(err.message:find("T1", 1, true))
  end)
end)

describe("purge_all against a scripted service: input", function()
  local fake = require "support.fake_bulk"

  it("a nil hole in the list counts as one failed item, at its index", function()
    -- (Four items: # of this shape is 4 on every Lua; of { x, nil, y } LuaJIT says 1.)
    local list = { "https://www.example.com/h/1", nil, "https://www.example.com/h/3", "https://www.example.com/h/4" }
    assert.equal(4, #list)
    local ok, rep = fake.run(list, nil, function(_, _, n) return fake.answer { TaskId = "T" .. n } end)
    assert.is_true(ok, tostring(rep))
    assert.equal(3, rep.ok)
    assert.equal(1, rep.failed)
    assert.equal(1, #rep.errors)
    assert.equal(2, rep.errors[1].err.index)
    assert.equal("not_string", rep.errors[1].err.problem)
  end)

  it("a hole at the list's border is counted too: every item after it is in the report", function()
    local list = {}
    list[1], list[3] = "https://www.example.com/b/1", "https://www.example.com/b/3" -- (# may say 1)
    local ok, rep = fake.run(list, nil, function(_, _, n) return fake.answer { TaskId = "T" .. n } end)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, rep.ok)
    assert.equal(1, rep.failed)
    assert.equal(2, rep.errors[1].err.index)
    -- table.pack's n: trailing nils are items too
    ok, rep = fake.run({ n = 3, "https://www.example.com/b/1" }, nil,
                       function() return fake.answer { TaskId = "T" } end)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, rep.ok)
    assert.equal(2, rep.failed)
  end)

  it("an item past a stale n is not left out; a huge or infinite n raises", function()
    local list = { n = 1, "https://www.example.com/p/1" }
    list[2] = "https://www.example.com/p/2" -- (table.pack's n, then one more)
    local ok, rep = fake.run(list, nil, function(_, _, n) return fake.answer { TaskId = "T" .. n } end)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, rep.ok)
    for _, n in ipairs { math.huge, 1e9 } do
      local err
      ok, err = fake.run({ n = n, "https://www.example.com/p/1" }, nil,
                         function() return fake.answer { TaskId = "T" } end)
      assert.is_false(ok)
      assert.matches("urls must be a list %(its keys are too sparse%)", tostring(err))
    end
  end)

  it("keys too sparse to be a list raise, naming the argument; nothing is sent", function()
    local sends = 0
    local ok, err = fake.run({ [1] = "https://www.example.com/s/1", [1e9] = "https://www.example.com/s/2" }, nil,
      function() sends = sends + 1 return fake.answer { TaskId = "T" } end)
    assert.is_false(ok)
    assert.matches("urls must be a list %(its keys are too sparse%)", tostring(err))
    assert.equal(0, sends)
  end)
end)

describe("purge_all against a scripted service: a service that lists a task late", function()
  local fake = require "support.fake_bulk"
  local core = require "ecdn.core"

  it("an early 'none' is looked at again lookup_settle after the send: an applied batch is not sent twice", function()
    local url = "https://www.example.com/late"
    local sends, lookups, applied_at = 0, 0, nil
    local ok, rep = fake.run({ url }, { max_backoff = 0, lookup_settle = 2 }, function(action)
      if action == "PurgeUrlsCache" then
        sends = sends + 1
        applied_at = applied_at or core.now()
        return nil, fake.DROPPED -- applied, the answer lost
      end
      lookups = lookups + 1
      -- the service lists the task only a second after making it
      if core.now() - applied_at < 1 then return fake.logs({}) end
      return fake.logs({ { TaskId = "T-late", Url = url } })
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, sends, "the applied batch was sent again on an early 'none'")
    assert.equal(2, lookups)
    assert.equal(1, rep.ok)
    assert.equal("T-late", rep.tasks[1].task_id)
  end)

  it("lookup_settle must be seconds from 0 to 60 (an infinite one would never end the job)", function()
    local ok, err = fake.run({ "https://www.example.com/x" }, { lookup_settle = -1 }, function() end)
    assert.is_false(ok)
    assert.matches("option 'lookup_settle' must be seconds from 0 to 60", tostring(err))
    for _, v in ipairs { math.huge, 61, 0 / 0 } do
      ok, err = fake.run({ "https://www.example.com/x" }, { lookup_settle = v }, function() end)
      assert.is_false(ok)
      assert.matches("option 'lookup_settle' must be seconds from 0 to 60", tostring(err))
    end
  end)
end)

describe("purge_all against a scripted service: refusals", function()
  local fake = require "support.fake_bulk"

  it("a batch refused for a domain is split by host, and the refused host's URLs fail in one request", function()
    local list = {}
    for i = 1, 600 do list[#list + 1] = "https://bad.example.org/d/" .. i end
    for i = 1, 400 do list[#list + 1] = "https://www.example.com/d/" .. i end
    local sends = 0
    local ok, rep = fake.run(list, nil, function(_, params)
      sends = sends + 1
      for _, u in ipairs(params.Urls) do
        if u:find("^https://bad%.") then
          return fake.api_error("ResourceNotFound.EcdnDomainNotExists", "no such domain")
        end
      end
      return fake.answer { TaskId = "T" .. sends }
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(3, sends) -- the batch, then each host once
    assert.equal(400, rep.ok)
    assert.equal(600, rep.failed)
    assert.equal(1, #rep.errors)
    assert.equal(600, #rep.errors[1].urls)
    assert.equal("ResourceNotFound.EcdnDomainNotExists", rep.errors[1].err.code)
  end)

  it("CDN's CdnHostUnauthorized splits the batch as ECDN's DomainUnauthorized does", function()
    local list = { "https://a.example.com/1", "https://b.example.com/2", "https://A.EXAMPLE.com:443/3" }
    local ok, rep = fake.run(list, nil, function(_, params, n)
      for _, u in ipairs(params.Urls) do
        if u:find("^https://b%.") then return fake.api_error("UnauthorizedOperation.CdnHostUnauthorized", "no") end
      end
      return fake.answer { TaskId = "T" .. n }
    end, { service = "cdn" })
    assert.is_true(ok, tostring(rep))
    assert.equal(2, rep.ok) -- a.example.com and A.EXAMPLE.com:443 are one host
    assert.same({ "https://b.example.com/2" }, rep.errors[1].urls)
  end)

  it("CAM refusing DescribePurgeTasks (AuthFailure.UnauthorizedOperation) does not stop the job", function()
    local list = {}
    for i = 1, 4 do list[i] = "https://www.example.com/c/" .. i end
    local purges, lookups = 0, 0
    -- Two requests a window: 1 (dropped) and 2 at once, 3 and the lookup a window later, 4 after that.
    local ok, rep = fake.run(list, { batch = 1, rate = 2, max_backoff = 0 }, function(action, _, n)
      if action ~= "PurgeUrlsCache" then
        lookups = lookups + 1
        assert(purges == 3, "the lookup came before URL 4 was sent")
        return fake.api_error("AuthFailure.UnauthorizedOperation", "CAM: no")
      end
      purges = purges + 1
      if purges == 1 then return nil, fake.DROPPED end
      return fake.answer { TaskId = "T" .. n }
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, lookups)
    assert.equal(3, rep.ok)
    assert.equal(1, rep.failed)
    assert.is_true(rep.errors[1].err.unknown)
    assert.equal("AuthFailure.UnauthorizedOperation", rep.errors[1].err.lookup_error.code)
  end)
end)

describe("purge_all against a scripted service: a skewed clock", function()
  local fake = require "support.fake_bulk"
  local times = require "ecdn.times"

  it("two lookups drawn at once on a clock 200 s slow are both drawn again (nothing purged twice)", function()
    local SKEW = 200 -- the service's clock is ahead of the client's by this much
    local created, sends, lookups = {}, 0, 0
    local function both_lookups(pending)
      local n = 0
      for _, p in ipairs(pending) do if p.params.Keyword then n = n + 1 end end
      return n >= 2
    end
    local ok, rep = fake.run({ "https://www.example.com/k/A", "https://www.example.com/k/B" },
      { batch = 1, concurrency = 2, max_backoff = 0 },
      function(action, params)
        local service_now = os.time() + SKEW
        if action == "PurgeUrlsCache" then
          sends = sends + 1
          created[params.Urls[1]] = service_now
          if sends <= 2 then return nil, fake.DROPPED end -- applied; answers lost
          return fake.answer({ TaskId = "again-" .. sends }, SKEW)
        end
        lookups = lookups + 1
        local from, to = times.from_beijing(params.StartTime), times.from_beijing(params.EndTime)
        local t = created[params.Keyword]
        local found = {}
        if t and t >= from and t <= to then found[1] = { TaskId = "T-" .. params.Keyword, Url = params.Keyword } end
        return fake.logs(found, SKEW), nil, lookups <= 2 and both_lookups or nil
      end)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, sends, "a batch the service had applied was sent again")
    assert.equal(2, rep.ok)
    assert.equal(4, lookups) -- both drawn again on the service's time
  end)
end)

describe("purge_all against a scripted service: dedupe = false", function()
  local fake = require "support.fake_bulk"

  -- A tiny service: tasks applied in order; lookups by Keyword newest first, or by TaskId.
  -- drop(n): true (applied, answer lost) or "before" (lost before the service).
  -- hold(n, svc): nil, or when send n's answer may come (fake.run's hold).
  local function service(drop, tasks, hold)
    local sends = 0
    tasks = tasks or {}
    local svc = { tasks = tasks }
    function svc.respond(action, params)
      if action == "PurgeUrlsCache" then
        sends = sends + 1
        svc.sends = sends
        local id = "T" .. sends
        if drop(sends) == "before" then return nil, fake.DROPPED end
        tasks[#tasks + 1] = { id = id, urls = params.Urls }
        if drop(sends) then return nil, fake.DROPPED end
        return fake.answer { TaskId = id }, nil, hold and hold(sends, svc)
      end
      if params.TaskId then svc.verified = true end
      local found = {}
      for i = #tasks, 1, -1 do
        local t = tasks[i]
        for _, u in ipairs(t.urls) do
          if (params.TaskId and params.TaskId == t.id) or (not params.TaskId and u == params.Keyword) then
            found[#found + 1] = { TaskId = t.id, Url = u }
          end
        end
      end
      return fake.logs(found)
    end
    return svc
  end

  it("a task a lookup gave one batch, answered to another of the same URLs, is the other's; both end purged", function()
    local a, b = "https://www.example.com/m/a", "https://www.example.com/m/b"
    local function any_verify(pending)
      for _, p in ipairs(pending) do if p.params.TaskId then return true end end
      return false
    end
    -- The first batch: applied, its answer lost. The second: applied, its answer held until
    -- the first batch's lookup has verified T2 (newest first) as its own.
    local svc = service(function(n) return n == 1 end, nil, function(_, s)
      return function(pending) return s.verified and not any_verify(pending) end
    end)
    local ok, rep = fake.run({ a, b, a, b }, { batch = 2, dedupe = false, concurrency = 2, max_backoff = 0 },
      svc.respond)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, svc.sends) -- nothing sent twice
    assert.is_true(svc.verified)
    assert.equal(4, rep.ok)
    assert.equal(0, rep.failed)
    local ids = {}
    for _, t in ipairs(rep.tasks) do ids[#ids + 1] = t.task_id end
    table.sort(ids)
    assert.same({ "T1", "T2" }, ids)
  end)

  it("verifies every task holding the key, not only the newest", function()
    local a, b, x = "https://www.example.com/v/a", "https://www.example.com/v/b", "https://www.example.com/v/x"
    -- Batches {a, b} {a, x} {b, x}: every URL stands in two. The first two are applied, their answers lost.
    local svc = service(function(n) return n <= 2 end)
    local ok, rep = fake.run({ a, b, a, x, b, x }, { batch = 2, dedupe = false, concurrency = 2, max_backoff = 0 },
      svc.respond)
    assert.is_true(ok, tostring(rep))
    assert.equal(3, svc.sends, "a batch the service had applied was sent again")
    assert.equal(6, rep.ok)
    local got = {}
    for _, t in ipairs(rep.tasks) do got[t.task_id] = table.concat(t.urls, " ") end
    assert.same({ T1 = a .. " " .. b, T2 = a .. " " .. x, T3 = b .. " " .. x }, got)
  end)

  it("a task holding more URLs than the batch is not the batch's", function()
    local a, z = "https://www.example.com/w/a", "https://www.example.com/w/z"
    -- Someone else's task {a, z} just before the job; the job's first {a} is lost before the service.
    local svc = service(function(n) return n == 1 and "before" end, { { id = "T0", urls = { a, z } } })
    local ok, rep = fake.run({ a, a }, { batch = 1, dedupe = false, concurrency = 1, max_backoff = 0 }, svc.respond)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, rep.ok)
    for _, t in ipairs(rep.tasks) do assert.are_not.equal("T0", t.task_id) end
    assert.equal(3, svc.sends)
  end)

  it("a lookup entry whose TaskId is not a string is skipped, not a raise", function()
    local url = "https://www.example.com/j"
    local sends = 0
    local ok, rep = fake.run({ url }, { max_backoff = 0 }, function(action)
      if action == "PurgeUrlsCache" then
        sends = sends + 1
        if sends == 1 then return nil, fake.DROPPED end
        return fake.answer { TaskId = "T2" }
      end
      return fake.logs { { TaskId = 1533045796, Url = url } }
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, rep.ok)
    assert.equal("T2", rep.tasks[1].task_id)
  end)
end)

describe("purge_all against a scripted service: lookups that cannot settle", function()
  local fake = require "support.fake_bulk"

  it("a lookup refused for good is not asked again; the batch is reported unknown, with the refusal", function()
    local url = "https://www.example.com/k"
    local lookups = 0
    local ok, rep = fake.run({ url }, { max_backoff = 0 }, function(action)
      if action == "PurgeUrlsCache" then return nil, fake.DROPPED end
      lookups = lookups + 1
      return fake.api_error("UnauthorizedOperation.EcdnCamUnauthorized", "no DescribePurgeTasks permission")
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, lookups)
    assert.equal(0, rep.ok)
    assert.equal(1, rep.failed)
    local err = rep.errors[1].err
    assert.equal("ClientError.NetworkError", err.code) -- what happened to the send
    assert.is_true(err.sent)
    assert.is_true(err.unknown)
    assert.is_false(err.retryable)                      -- sending again may purge twice
    assert.equal("UnauthorizedOperation.EcdnCamUnauthorized", err.lookup_error.code)
  end)

  it("lookups that keep failing end as unknown too, after their own budget", function()
    local url = "https://www.example.com/k2"
    local lookups = 0
    local ok, rep = fake.run({ url }, { max_backoff = 0, retries = 2 }, function(action)
      if action == "PurgeUrlsCache" then return nil, fake.DROPPED end
      lookups = lookups + 1
      return fake.api_error("InternalError.EcdnSystemError")
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(3, lookups) -- 1 + retries
    local err = rep.errors[1].err
    assert.is_true(err.unknown)
    assert.is_false(err.retryable)
    assert.equal("InternalError.EcdnSystemError", err.lookup_error.code)
  end)
end)

describe("purge_all against a scripted service: a stop while a batch is uncertain", function()
  local fake = require "support.fake_bulk"
  local list = { "https://www.example.com/dl/A", "https://www.example.com/dl/B", "https://www.example.com/dl/C" }

  -- A lost (applied or not), B purged, C refused for the daily limit.
  local function day(applied)
    local sends = 0
    local svc = {}
    function svc.respond(action, params)
      if action == "PurgeUrlsCache" then
        sends = sends + 1
        svc.sends = sends
        local u = params.Urls[1]
        if u == list[1] then return nil, fake.DROPPED end
        if u == list[3] then return fake.api_error("LimitExceeded.EcdnPurgeUrlExceedDayLimit") end
        return fake.answer { TaskId = "T-B" }
      end
      return fake.logs(applied and params.Keyword == list[1] and { { TaskId = "T-A", Url = list[1] } } or {})
    end
    return svc
  end

  it("the daily limit: the uncertain batch is still looked up, and found applied", function()
    local svc = day(true)
    local ok, rep = fake.run(list, { batch = 1, concurrency = 1, max_backoff = 0 }, svc.respond)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, rep.ok)
    assert.equal(1, rep.failed)
    assert.equal(3, svc.sends)
    assert.equal("LimitExceeded.EcdnPurgeUrlExceedDayLimit", rep.errors[1].err.code)
    local a
    for _, t in ipairs(rep.tasks) do if t.urls[1] == list[1] then a = t.task_id end end
    assert.equal("T-A", a)
  end)

  it("the daily limit: an uncertain batch found not applied is not sent again", function()
    local svc = day(false)
    local ok, rep = fake.run(list, { batch = 1, concurrency = 1, max_backoff = 0 }, svc.respond)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, rep.ok)
    assert.equal(2, rep.failed)
    assert.equal(3, svc.sends)
    for _, e in ipairs(rep.errors) do
      if e.urls[1] == list[1] then
        assert.equal("ClientError.NetworkError", e.err.code) -- its own error: sent, found not applied
        assert.is_false(e.err.unknown) -- settled by the lookup: not an unknown outcome
        assert.is_false(require("ecdn.errors").outcome_unknown(e.err))
        assert.matches("^not applied %(no task holds it%): ", e.err.message)
      end
    end
  end)

  it("the deadline: the uncertain batch is still looked up; its lookup is never skipped", function()
    local sends = 0
    local ok, rep = fake.run({ list[1], list[2] }, { batch = 1, concurrency = 1, max_backoff = 0, deadline = 0.2 },
      function(action, params)
        if action == "PurgeUrlsCache" then
          sends = sends + 1
          return nil, fake.DROPPED
        end
        return fake.logs(params.Keyword == list[1] and { { TaskId = "T-A", Url = list[1] } } or {})
      end)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, sends) -- both went out before the deadline; neither again after it
    assert.equal(1, rep.ok)
    assert.equal("T-A", rep.tasks[1].task_id)
    assert.equal(1, rep.failed)
    assert.equal("ClientError.NetworkError", rep.errors[1].err.code) -- B: found not applied
    assert.is_false(rep.errors[1].err.unknown)
  end)
end)

describe("purge_all lookups never take an older task", function()
  local fake = require "support.fake_bulk"
  local url = "https://www.example.com/old/app.js"

  it("a task made seconds before the first send (on the service's clock) is not the batch's", function()
    local SKEW = 200 -- the service's clock is ahead; every answer's Date says so
    local sends = 0
    local job_start = os.time() + SKEW
    local ok, rep = fake.run({ url }, { max_backoff = 0 }, function(action)
      if action == "PurgeUrlsCache" then
        sends = sends + 1
        if sends == 1 then return nil, fake.DROPPED end -- lost before the service
        return fake.answer({ TaskId = "T-new" }, SKEW)
      end
      -- Someone else's purge of the URL 3 s before the job (inside the lookup's 5 s slack).
      return fake.logs({ { TaskId = "T-old", Url = url, CreateTime = job_start - 3 } }, SKEW)
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(2, sends)
    assert.equal("T-new", rep.tasks[1].task_id)
  end)

  it("the batch's own task, made in the second of the send, is taken (clock 200 s slow)", function()
    local SKEW = 200
    local sends, created = 0, nil
    local ok, rep = fake.run({ url }, { max_backoff = 0 }, function(action)
      local service_now = os.time() + SKEW
      if action == "PurgeUrlsCache" then
        sends = sends + 1
        created = created or service_now
        if sends == 1 then return nil, fake.DROPPED end -- applied; the answer lost
        return fake.answer({ TaskId = "T-again" }, SKEW)
      end
      return fake.logs({ { TaskId = "T-own", Url = url, CreateTime = created } }, SKEW)
    end)
    assert.is_true(ok, tostring(rep))
    assert.equal(1, sends, "an applied batch was sent again")
    assert.equal("T-own", rep.tasks[1].task_id)
  end)

  it("a purge the client made just before the job (same second) is not the job's", function()
    -- seed 7, drop-rate 0.5: request 1 (client:purge) answers, request 2 (purge_all's send) is lost
    -- before the service, request 3 (the lookup) answers.
    local s = sim.start { args = { "--rate", "0", "--seed", "7", "--drop-rate", "0.5" }, log = true }
    finally(function() s:stop() end)
    local c = client(s, { rate = 0, timeout = 5 })
    local old = assert(c:purge { url }).task_id
    local rep = assert(c:purge_all({ url }, { max_backoff = 0.02 }))
    local applied = {}
    for _, e in ipairs(s:log_entries()) do applied[#applied + 1] = e.task_id end
    assert.equal(2, #applied)
    assert.equal(1, rep.ok)
    assert.equal(applied[2], rep.tasks[1].task_id)
    assert.are_not.equal(old, rep.tasks[1].task_id)
  end)
end)
