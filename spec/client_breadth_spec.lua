-- Issue 11 on ecdn.client against the simulator: service = "auto" (ECDN
-- accounts moved to CDN), CDN's area and url_encode, push, purge_paths_all,
-- tasks and each_task, quota, signature v1 end to end, and credential
-- providers rotated on a live client.
local ecdn = require "ecdn"
local sim = require "support.sim"

local function client(s, extra)
  local o = { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, timeout = 10, rate = 0 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(ecdn.client(o))
end

local function last_entry(s)
  local all = s:log_entries()
  return all[#all]
end

describe("service = \"auto\"", function()
  it("starts on ECDN and, told the account moved, sends the same request to CDN and stays there", function()
    local s = sim.start { args = { "--rate", "0", "--migrated", sim.DEFAULT_SECRET_ID }, log = true }
    finally(function() s:stop() end)
    local c = client(s, { service = "auto" })
    assert.equal("ecdn", c:info().service)
    local before = s:stats().requests
    local res = assert(c:purge { "https://www.example.com/auto" })
    assert.equal(before + 2, s:stats().requests) -- refused on ecdn, then done on cdn
    assert.equal("cdn", c:info().service)
    assert.equal("2018-06-06", c:info().version)
    local e = last_entry(s)
    assert.equal("cdn", e.service)
    assert.equal(res.task_id, e.task_id)
    -- It stays on CDN: one request now.
    before = s:stats().requests
    assert(c:purge { "https://www.example.com/auto2" })
    assert.equal(before + 1, s:stats().requests)
  end)

  it("explicit ecdn reports the migration as the error it is", function()
    local s = sim.start { args = { "--rate", "0", "--migrated", sim.DEFAULT_SECRET_ID } }
    finally(function() s:stop() end)
    local res, err = client(s):purge { "https://www.example.com/x" }
    assert.is_nil(res)
    assert.equal("UnauthorizedOperation.EcdnMigratedCdn", err.code)
    assert.is_false(err.retryable)
  end)

  it("purge_all on an auto client moves too", function()
    local s = sim.start { args = { "--rate", "0", "--migrated", sim.DEFAULT_SECRET_ID }, log = true }
    finally(function() s:stop() end)
    local c = client(s, { service = "auto" })
    local urls = {}
    for i = 1, 30 do urls[i] = "https://www.example.com/auto-bulk/" .. i end
    local rep = assert(c:purge_all(urls, { batch = 10 }))
    assert.equal(30, rep.ok)
    assert.equal("cdn", c:info().service)
  end)
end)

describe("CDN extras", function()
  it("area and url_encode reach the service on cdn, and are refused on ecdn", function()
    local s = sim.start { args = { "--rate", "0" }, log = true }
    finally(function() s:stop() end)
    local c = client(s, { service = "cdn" })
    assert(c:purge({ "https://www.example.com/a" }, { area = "overseas", url_encode = true }))
    local e = last_entry(s)
    assert.same({ "overseas", true }, { e.area, e.url_encode })
    assert(c:purge_paths({ "https://www.example.com/dir/" }, { flush_type = "delete", area = "mainland" }))
    assert.equal("mainland", last_entry(s).area)
    local ok, msg = pcall(function() client(s):purge({ "https://www.example.com/a" }, { area = "mainland" }) end)
    assert.is_false(ok)
    assert.truthy(msg:find("ecdn.client:purge: area and url_encode are CDN options", 1, true), msg)
    ok, msg = pcall(function() c:purge({ "https://www.example.com/a" }, { area = "mars" }) end)
    assert.is_false(ok)
    assert.truthy(msg:find("area must be", 1, true), msg)
  end)

  it("push: PushUrlsCache on cdn, refused on ecdn before sending", function()
    local s = sim.start { args = { "--rate", "0" }, log = true }
    finally(function() s:stop() end)
    local c = client(s, { service = "cdn" })
    local res = assert(c:push({ "https://www.example.com/p1", "https://www.example.com/p2" },
      { area = "mainland", user_agent = "TencentCdn" }))
    assert.matches("^%d+%-%w+$", res.task_id)
    local res2, err = c:push { "ftp://www.example.com/x" }
    assert.is_nil(res2)
    assert.equal("scheme", err.problem)
    local ok, msg = pcall(function() client(s):push { "https://www.example.com/p" } end)
    assert.is_false(ok)
    assert.truthy(msg:find("PushUrlsCache exists on CDN only", 1, true), msg)
  end)

  it("quota: one object per kind on ecdn, one per area on cdn", function()
    local s = sim.start { args = { "--rate", "0", "--quota", "500", "--path-quota", "40" } }
    finally(function() s:stop() end)
    local q = assert(client(s):quota())
    assert.same({ batch = 1000, total = 500, available = 500 }, q.urls)
    assert.equal(40, q.paths.total)
    local qc = assert(client(s, { service = "cdn" }):quota())
    assert.equal(500, qc.urls.mainland.available)
    assert.equal(500, qc.urls.overseas.total)
    assert.equal(40, qc.paths.mainland.total)
  end)
end)

describe("purge_paths_all", function()
  it("batches directories, with the flush type, and accounts for each", function()
    local s = sim.start { args = { "--rate", "0", "--path-quota", "1000" }, log = true }
    finally(function() s:stop() end)
    local paths = {}
    for i = 1, 45 do paths[i] = "https://www.example.com/dir" .. i .. "/" end
    paths[#paths + 1] = "nope"
    local rep = assert(client(s):purge_paths_all(paths, { flush_type = "flush" }))
    assert.equal(45, rep.ok)
    assert.equal(1, rep.failed)
    assert.equal(3, #rep.tasks) -- ECDN takes 20 paths per request
    assert.equal("path", rep.errors[1].err.message:match("^(path)"))
    local ok, msg = pcall(function() client(s):purge_paths_all(paths, {}) end)
    assert.is_false(ok)
    assert.truthy(msg:find("flush_type", 1, true), msg)
  end)
end)

describe("tasks", function()
  it("tasks and each_task: snake_case fields, unix times, every page", function()
    local s = sim.start { args = { "--rate", "0", "--fake-clock", "now", "--task-ms", "0" } }
    finally(function() s:stop() end)
    local c = client(s, { clock = function() return s:now() end })
    local t0 = s:now()
    local ids = {}
    for i = 1, 7 do ids[i] = assert(c:purge { "https://www.example.com/t/" .. i }).task_id end
    local list, total = assert(c:tasks { start_time = t0 - 5, limit = 3 })
    assert.equal(7, total)
    assert.equal(3, #list)
    local t = list[1]
    assert.equal("url", t.purge_type)
    assert.equal("done", t.status)
    assert.is_true(math.abs(t.create_time - t0) <= 2, "create_time " .. tostring(t.create_time))
    assert.matches("^https://www%.example%.com/t/%d$", t.url)
    local seen = {}
    for task, err in c:each_task { start_time = t0 - 5, limit = 2 } do
      assert.is_nil(err)
      seen[#seen + 1] = task.task_id
    end
    assert.equal(7, #seen)
    -- A failing page reaches the loop body as false, err.
    local got
    for task, err in c:each_task { status = "bogus", start_time = t0 - 5 } do
      assert.is_false(task)
      got = err
    end
    assert.is_table(got)
    assert.equal("api", got.kind)
    local one = assert(c:tasks { task_id = ids[3] })
    assert.equal(ids[3], one[1].task_id)
    local ok, msg = pcall(function() c:tasks { bogus = 1 } end)
    assert.is_false(ok)
    assert.truthy(msg:find("unknown filter 'bogus'", 1, true), msg)
  end)
end)

describe("signature v1, end to end", function()
  for _, method in ipairs { "HmacSHA256", "HmacSHA1" } do
    it("purge, purge_paths and call with " .. method .. ": the same results as TC3", function()
      local s = sim.start { args = { "--rate", "0" }, log = true }
      finally(function() s:stop() end)
      local c = client(s, { signature = "v1", signature_method = method })
      local res = assert(c:purge { "https://www.example.com/v1/a", "https://www.example.com/v1/b" })
      local e = last_entry(s)
      assert.equal(res.task_id, e.task_id)
      assert.same({ "https://www.example.com/v1/a", "https://www.example.com/v1/b" }, e.urls)
      assert(c:purge_paths({ "https://www.example.com/v1/" }, { flush_type = "delete" }))
      local q = assert(c:call("DescribePurgeQuota", {}))
      assert.is_table(q.UrlPurge)
      -- Errors are the same tables.
      local bad = client(s, { signature = "v1", signature_method = method, secret_key = "wrong" })
      local r2, err = bad:purge { "https://www.example.com/v1/c" }
      assert.is_nil(r2)
      assert.equal("AuthFailure.SignatureFailure", err.code)
      local r3, err3 = c:purge { "www.example.com/noscheme" }
      assert.is_nil(r3)
      assert.equal("scheme", err3.problem)
    end)
  end
end)

describe("credential providers on a live client", function()
  it("rotates expiring credentials before they expire, on the same connection", function()
    local A = "AKIDrotationA000000000000000000000000"
    local B = "AKIDrotationB000000000000000000000000"
    local s = sim.start { args = { "--rate", "0", "--fake-clock", "now", "--secret", A .. ":keyA",
                                   "--secret", B .. ":keyB" }, log = true }
    finally(function() s:stop() end)
    local calls = 0
    local provider = {
      get = function(_, now)
        calls = calls + 1
        local hour = math.floor((now - 1e9) / 3600) % 2
        return { secret_id = hour == 0 and A or B, secret_key = hour == 0 and "keyA" or "keyB",
                 expires_at = (math.floor((now - 1e9) / 3600) + 1) * 3600 + 1e9, source = "test provider" }
      end,
    }
    local c = assert(ecdn.client { credentials = provider, endpoint = s.url, rate = 0,
                                   clock = function() return s:now() end })
    assert.equal("test provider", c:info().credential_source)
    local used = {}
    for _ = 1, 6 do
      assert(c:purge { "https://www.example.com/rot/" .. #used })
      used[#used + 1] = last_entry(s).secret_id
      s:advance(1800) -- half an hour
    end
    -- Both identities signed, each before its credentials expired; one connection.
    local saw = {}
    for _, id in ipairs(used) do saw[id] = true end
    assert.is_true(saw[A] and saw[B])
    assert.equal(1, s:stats().connections)
    assert.is_true(calls >= 3)
    local ok, msg = pcall(ecdn.client, { credentials = provider, secret_id = A })
    assert.is_false(ok)
    assert.truthy(msg:find("either 'credentials'", 1, true), msg)
  end)
end)
