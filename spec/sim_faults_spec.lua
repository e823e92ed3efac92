-- Simulator faults: --fail-rate, --drop-rate, --garbage-rate, --delay-ms,
-- each seeded and reproducible (same seed + same requests = same faults).
local sim = require "support.sim"
local socket = require "socket"
local cjson = require "cjson.safe"

local function body_for(i)
  return cjson.encode { Urls = { "http://a.com/fault/" .. i } }
end

-- Sends n requests, each on its own connection; returns one outcome string per
-- request: "ok", an API error code, "http <status>", "garbage" or "dropped".
local function outcomes(s, n)
  local out = {}
  for i = 1, n do
    local status, raw, decoded = sim.raw_request(s.port, "PurgeUrlsCache", body_for(i))
    if not status then
      out[i] = "dropped"
    elseif status ~= 200 then
      out[i] = "http " .. status
    elseif type(decoded) ~= "table" or type(decoded.Response) ~= "table" then
      out[i] = "garbage"
      assert.is_string(raw)
    else
      out[i] = decoded.Response.Error and decoded.Response.Error.Code or "ok"
    end
  end
  return out
end

local function count(list, what)
  local n = 0
  for _, v in ipairs(list) do
    if v == what then n = n + 1 end
  end
  return n
end

local function with_sim(args, fn)
  local s = sim.start { args = args, log = true }
  local ok, err = pcall(fn, s)
  s:stop()
  if not ok then error(err, 0) end
end

describe("simulator faults", function()
  it("--fail-rate 1 answers HTTP 500, 502, 503 or InternalError, and purges nothing", function()
    with_sim({ "--rate", "0", "--fail-rate", "1", "--seed", "11" }, function(s)
      local got = outcomes(s, 40)
      for _, kind in ipairs { "http 500", "http 502", "http 503", "InternalError" } do
        assert.is_true(count(got, kind) > 0, kind .. " never seen")
      end
      assert.equal(40, count(got, "http 500") + count(got, "http 502") + count(got, "http 503")
                       + count(got, "InternalError"))
      assert.same({}, s:log_entries())
    end)
  end)

  it("is reproducible: the same seed gives the same faults, another seed others", function()
    local args = { "--rate", "0", "--fail-rate", "0.3", "--drop-rate", "0.2", "--garbage-rate", "0.2" }
    local runs = {}
    for i, seed in ipairs { "5", "5", "6" } do
      local a = { "--seed", seed }
      for _, x in ipairs(args) do a[#a + 1] = x end
      with_sim(a, function(s) runs[i] = outcomes(s, 30) end)
    end
    assert.same(runs[1], runs[2])
    assert.are_not.same(runs[1], runs[3])
    assert.is_true(count(runs[1], "ok") > 0 and count(runs[1], "dropped") > 0 and count(runs[1], "garbage") > 0)
  end)

  it("--drop-rate 1 closes without answering; about half after the purge was logged", function()
    with_sim({ "--rate", "0", "--drop-rate", "1", "--seed", "12" }, function(s)
      local got = outcomes(s, 30)
      assert.equal(30, count(got, "dropped"))
      local entries = s:log_entries()
      assert.is_true(#entries > 0 and #entries < 30, #entries .. " logged")
      for _, e in ipairs(entries) do
        assert.matches("^http://a%.com/fault/%d+$", e.urls[1])
      end
      local st = s:stats()
      assert.equal(30, st.dropped)
      assert.equal(#entries, st.purged_urls)
    end)
  end)

  it("--garbage-rate 1 answers 200 with a body that is not JSON, and purges nothing", function()
    with_sim({ "--rate", "0", "--garbage-rate", "1", "--seed", "13" }, function(s)
      local got = outcomes(s, 10)
      assert.equal(10, count(got, "garbage"))
      assert.same({}, s:log_entries())
    end)
  end)

  it("--delay-ms delays each answer without holding up other connections", function()
    with_sim({ "--rate", "0", "--delay-ms", "300", "--seed", "14" }, function(s)
      -- Real time, as a lower bound only: the answer never comes before the delay.
      local t0 = socket.gettime()
      assert.equal("ok", outcomes(s, 1)[1])
      assert.is_true(socket.gettime() - t0 >= 0.3)
    end)
    -- Not holding up the others, without a clock: with a delay far longer than
    -- the test, four requests sent at once are all inside their delay together
    -- (the simulator counts an API request when it starts, before the delay),
    -- and none has been answered yet. Serialised delays could not show that.
    with_sim({ "--rate", "0", "--delay-ms", "60000", "--seed", "14" }, function(s)
      local conns = {}
      for i = 1, 4 do
        conns[i] = assert(sim.connect(s.port))
        conns[i]:send((sim.build_request(s.port, "PurgeUrlsCache", body_for(i))))
      end
      local stats
      local deadline = socket.gettime() + 30
      repeat
        stats = s:stats()
        if stats.requests < 4 then socket.sleep(0.01) end
      until stats.requests >= 4 or socket.gettime() > deadline
      assert.equal(4, stats.requests)
      assert.same({}, stats.http) -- nothing answered: all four are waiting at the same time
      for i = 1, 4 do conns[i]:close() end
    end)
  end)
end)
