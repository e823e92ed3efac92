-- What a caller can conclude from a purge's outcome, checked against what
-- the service really did: the simulator drops 30% of the connections, half
-- of them after the purge was accepted and logged. `sent = false` must mean
-- "certainly not acted on"; a purge is never written twice on its own.
local ecdn = require "ecdn"
local sim = require "support.sim"

local N = 300

local function client(s)
  return assert(ecdn.client { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, timeout = 10,
                               rate = 0 }) -- many requests in a row: no client-side rate limit
end

describe("purge outcomes under dropped connections", function()
  local s, results, logged

  setup(function()
    s = sim.start { args = { "--rate", "0", "--drop-rate", "0.3", "--seed", "20240611" }, log = true }
    local c = client(s)
    results = {}
    for i = 1, N do
      local url = "https://www.example.com/outcome/" .. i
      local res, err = c:purge { url }
      results[i] = { url = url, res = res, err = err }
    end
    c:close()
    logged = {}
    for _, e in ipairs(s:log_entries()) do
      for _, u in ipairs(e.urls) do logged[u] = (logged[u] or 0) + 1 end
    end
  end)

  teardown(function() s:stop() end)

  it("the run saw successes, drops before the purge and drops after it", function()
    local ok, lost, acted = 0, 0, 0
    for _, r in ipairs(results) do
      if r.res then ok = ok + 1
      elseif logged[r.url] then acted = acted + 1
      else lost = lost + 1 end
    end
    assert.is_true(ok > N / 2, "successes " .. ok)
    assert.is_true(lost > 0, "no request was dropped before the purge")
    assert.is_true(acted > 0, "no request was dropped after the purge")
    assert.is_true(s:stats().dropped > 0)
  end)

  it("every error is a complete error table", function()
    for _, r in ipairs(results) do
      local err = r.err
      if err then
        assert.equal("ClientError.NetworkError", err.code, tostring(err))
        assert.equal("network", err.kind)
        assert.is_string(err.message)
        assert.is_boolean(err.retryable)
        assert.is_boolean(err.sent)
        assert.is_string(err.detail)
      end
    end
  end)

  it("a URL logged twice belongs to a success with attempts >= 2 or a sent error", function()
    for _, r in ipairs(results) do
      if (logged[r.url] or 0) >= 2 then
        assert.is_true((r.res and r.res.attempts >= 2) or (r.err and r.err.sent == true), r.url)
      end
    end
  end)

  it("an error with sent = false never reached the service", function()
    for _, r in ipairs(results) do
      if r.err and r.err.sent == false then
        assert.is_nil(logged[r.url], r.url .. " was purged but the error says it was not sent")
      end
    end
  end)

  it("a URL the service acted on but the client got no answer for is a sent error", function()
    for _, r in ipairs(results) do
      if r.err and logged[r.url] then
        assert.is_true(r.err.sent, r.url .. ": " .. tostring(r.err))
      end
    end
  end)

  it("every success is in the log, once when attempts == 1", function()
    for _, r in ipairs(results) do
      if r.res then
        assert.is_number(r.res.attempts)
        assert.truthy(logged[r.url], r.url .. " succeeded but is not in the log")
        if r.res.attempts == 1 then assert.equal(1, logged[r.url], r.url) end
      end
    end
  end)

  it("no purge was written twice: no URL is logged more than once", function()
    for _, r in ipairs(results) do
      assert.is_true((logged[r.url] or 0) <= 1, r.url .. " logged " .. tostring(logged[r.url]) .. " times")
      if r.res then assert.equal(1, r.res.attempts, r.url) end
    end
  end)

  it("call() results carry attempts; Describe actions may be written again", function()
    local c = client(s)
    local answered, resent = 0, 0
    for _ = 1, 60 do
      local resp, err = c:call("DescribePurgeQuota")
      if resp then
        answered = answered + 1
        assert.is_string(resp.RequestId)
        assert.is_number(resp.attempts)
        assert.is_true(resp.attempts >= 1)
        if resp.attempts >= 2 then resent = resent + 1 end
      else
        assert.equal("ClientError.NetworkError", err.code, tostring(err))
        assert.is_boolean(err.sent)
        assert.is_number(err.attempts)
      end
    end
    assert.is_true(answered > 0)
    assert.is_true(resent > 0, "no DescribePurgeQuota was written again after a dropped keep-alive connection")
    c:close()
  end)
end)
