-- client:purge and client:call against the local simulator: success, every
-- AuthFailure, the purge error codes it produces, faults, byte-exact URLs and
-- keep-alive.
local ecdn = require "ecdn"
local sim = require "support.sim"

local function client(s, extra)
  local opts = { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, timeout = 10, rate = 0 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(ecdn.client(opts))
end

local function entry_for(s, task_id)
  for _, e in ipairs(s:log_entries()) do
    if e.task_id == task_id then return e end
  end
end

local function api_error(code, retryable, res, err)
  assert.is_nil(res)
  assert.is_table(err, "expected an error")
  assert.equal(code, err.code, tostring(err))
  assert.equal("api", err.kind)
  assert.equal(retryable, err.retryable)
  assert.equal(200, err.status)
  assert.is_string(err.request_id)
  assert.truthy(tostring(err):find(code .. ": ", 1, true))
  assert.truthy(tostring(err):find("(request " .. err.request_id .. ")", 1, true))
  return err
end

describe("purge against the simulator", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0", "--seed", "1" }, log = true } end)
  teardown(function() s:stop() end)

  for _, service in ipairs { "ecdn", "cdn" } do
    it("succeeds for " .. service .. " and the simulator logs exactly the URLs sent", function()
      local c = client(s, { service = service })
      local urls = { "https://www.example.com/a.jpg", "http://www.example.com/b.css?v=1" }
      local res, err = c:purge(urls)
      assert.is_nil(err)
      assert.is_string(res.task_id)
      assert.is_string(res.request_id)
      local e = assert(entry_for(s, res.task_id), "task not in the simulator's log")
      assert.equal(service, e.service)
      assert.equal(res.request_id, e.request_id)
      assert.equal(s.secret_id, e.secret_id)
      assert.same(urls, e.urls)
      c:close()
    end)
  end

  it("call() returns the decoded Response", function()
    local c = client(s)
    local resp, err = c:call("DescribePurgeQuota", {})
    assert.is_nil(err)
    assert.is_string(resp.RequestId)
    assert.is_table(resp.UrlPurge)
    c:close()
  end)

  it("call() passes API errors through", function()
    local c = client(s)
    api_error("InvalidAction", false,
      c:call("NoSuchAction", {}))
    api_error("InvalidParameter.EcdnPurgeWildcardNotAllowed", false,
      c:call("PurgeUrlsCache", { Urls = { "https://*.example.com/" } }))
    api_error("UnknownParameter", false,
      c:call("PurgeUrlsCache", { Urls = { "https://www.example.com/" }, Bogus = 1 }))
    c:close()
  end)

  it("1000 URLs with unicode, quotes, backslashes and % arrive byte-exact", function()
    local urls = {}
    local pieces = { "\"q\"", "back\\slash", "100%25", "%", "中文", "😀", "é", "a'b", "<>{}|^`", "\t" }
    for i = 1, 1000 do
      local p = pieces[i % #pieces + 1]
      if p == "\t" then p = "~" end -- whitespace is refused locally; keep the list valid
      urls[i] = "https://www.example.com/" .. i .. "/" .. p .. "/ü?x=" .. p .. "#" .. i
    end
    local c = client(s)
    local res, err = c:purge(urls)
    assert.is_nil(err)
    local e = assert(entry_for(s, res.task_id))
    assert.equal(#urls, #e.urls)
    for i = 1, #urls do assert.equal(urls[i], e.urls[i]) end
    c:close()
  end)

  it("keeps one connection alive for 100 purges", function()
    local c = client(s)
    local before = s:stats().connections
    for i = 1, 100 do
      assert(c:purge { "https://www.example.com/keepalive/" .. i })
    end
    local after = s:stats().connections
    c:close()
    assert.equal(1, after - before)
  end)
end)

describe("authentication failures", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0" } } end)
  teardown(function() s:stop() end)

  local URLS = { "https://www.example.com/a.jpg" }

  it("wrong key: AuthFailure.SignatureFailure", function()
    local c = client(s, { secret_key = s.secret_key .. "x" })
    api_error("AuthFailure.SignatureFailure", false,
      c:purge(URLS))
    c:close()
  end)

  it("a clock one hour slow is corrected from the answer's Date header: the purge succeeds", function()
    -- Both clocks are told (the client's: the simulator's, an hour back), so
    -- the offset is exact however long the requests take.
    local fs = sim.start { args = { "--rate", "0", "--fake-clock", "1700000000" } }
    finally(function() fs:stop() end)
    local c = client(fs, { clock = function() return fs:now() - 3600 end })
    local before = fs:stats().purged_urls
    local res = assert(c:purge(URLS))
    assert.is_string(res.task_id)
    assert.equal(3600, c:info().clock_offset)
    assert.equal(before + #URLS, fs:stats().purged_urls) -- the refused attempt purged nothing
    -- The offset stays: the next purge needs no correction.
    local requests = fs:stats().requests
    assert(c:purge(URLS))
    assert.equal(requests + 1, fs:stats().requests)
    c:close()
  end)

  it("a clock that keeps drifting: AuthFailure.SignatureExpire after one correction", function()
    local n = 0
    local c = client(s, { clock = function() n = n + 1 return os.time() - 3600 * n end })
    local before = s:stats().requests
    api_error("AuthFailure.SignatureExpire", false,
      c:purge(URLS))
    assert.equal(before + 2, s:stats().requests) -- sent twice: as it was, then corrected once
    c:close()
    -- A clock within the allowed skew needs no correction.
    c = client(s, { clock = function() return os.time() - 60 end })
    assert(c:purge(URLS))
    assert.equal(0, c:info().clock_offset)
    c:close()
  end)

  it("unknown id: AuthFailure.SecretIdNotFound", function()
    local c = client(s, { secret_id = "AKIDunknown000000000000000000000000" })
    api_error("AuthFailure.SecretIdNotFound", false,
      c:purge(URLS))
    c:close()
  end)

  it("a token sent with permanent credentials: AuthFailure.TokenFailure", function()
    local c = client(s, { token = "unexpected-token" })
    api_error("AuthFailure.TokenFailure", false,
      c:purge(URLS))
    c:close()
  end)
end)

describe("temporary credentials", function()
  local ID, KEY, TOKEN = "AKIDtemporary00000000000000000000001", "temporary-key", "session-token-1"
  local s
  setup(function()
    s = sim.start { args = { "--rate", "0", "--secret", ID .. ":" .. KEY, "--token", ID .. ":" .. TOKEN } }
  end)
  teardown(function() s:stop() end)

  local function temp(token)
    return assert(ecdn.client { secret_id = ID, secret_key = KEY, token = token, endpoint = s.url })
  end

  it("succeed with the right token, fail without it or with another", function()
    local URLS = { "https://www.example.com/a.jpg" }
    assert(temp(TOKEN):purge(URLS))
    api_error("AuthFailure.TokenFailure", false,
      temp(nil):purge(URLS))
    api_error("AuthFailure.TokenFailure", false,
      temp(TOKEN .. "x"):purge(URLS))
  end)
end)

describe("purge error codes from the simulator", function()
  local s
  setup(function()
    s = sim.start { args = { "--rate", "0", "--batch", "3", "--quota", "5", "--url-max", "60",
                             "--path-batch", "2", "--path-quota", "3", "--domains", "www.example.com" } }
  end)
  teardown(function() s:stop() end)

  it("batch limit", function()
    local c = client(s)
    api_error("LimitExceeded.EcdnPurgeUrlExceedBatchLimit", false,
      c:purge { "https://www.example.com/1", "https://www.example.com/2",
                        "https://www.example.com/3", "https://www.example.com/4" })
    local cdn = client(s, { service = "cdn" })
    api_error("LimitExceeded.CdnPurgeUrlExceedBatchLimit", false,
      cdn:purge { "https://www.example.com/1", "https://www.example.com/2",
                          "https://www.example.com/3", "https://www.example.com/4" })
  end)

  it("URL too long", function()
    api_error("InvalidParameter.EcdnUrlExceedLength", false,
      client(s):purge { "https://www.example.com/" .. ("x"):rep(80) })
  end)

  it("unknown domain", function()
    api_error("ResourceNotFound.EcdnDomainNotExists", false,
      client(s):purge { "https://other.example.org/a" })
    api_error("ResourceNotFound.CdnHostNotExists", false,
      client(s, { service = "cdn" }):purge { "https://other.example.org/a" })
  end)

  it("parameter errors the client cannot catch pass through (via call)", function()
    api_error("InvalidParameter.EcdnParamError", false,
      client(s):call("PurgeUrlsCache", { Urls = { "https://user@/a" } }))
    api_error("InvalidParameter.CdnParamError", false,
      client(s, { service = "cdn" }):call("PurgeUrlsCache", { Urls = { "https://www.example.com/a" }, Area = "moon" }))
  end)

  it("path purge limits (via call)", function()
    local c = client(s)
    local function paths(n)
      local t = {}
      for i = 1, n do t[i] = "https://www.example.com/dir" .. i .. "/" end
      return { Paths = t, FlushType = "flush" }
    end
    api_error("LimitExceeded.EcdnPurgePathExceedBatchLimit", false, c:call("PurgePathCache", paths(3)))
    assert(c:call("PurgePathCache", paths(2)))
    api_error("LimitExceeded.EcdnPurgePathExceedDayLimit", false, c:call("PurgePathCache", paths(2)))
  end)

  it("daily quota", function()
    local c = client(s)
    assert(c:purge { "https://www.example.com/q1", "https://www.example.com/q2", "https://www.example.com/q3" })
    api_error("LimitExceeded.EcdnPurgeUrlExceedDayLimit", false,
      c:purge { "https://www.example.com/q4", "https://www.example.com/q5", "https://www.example.com/q6" })
  end)
end)

describe("rate limit", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "1" } } end)
  teardown(function() s:stop() end)

  it("RequestLimitExceeded is retryable", function()
    local c = client(s)
    local err
    -- At 1 request/second, two of a few back-to-back requests share a second.
    for i = 1, 5 do
      local _, e = c:purge { "https://www.example.com/rate/" .. i }
      if e then err = e break end
    end
    api_error("RequestLimitExceeded", true, nil, err)
  end)
end)

describe("faults", function()
  local URLS = { "https://www.example.com/a.jpg" }

  it("a dropped connection is a retryable network error", function()
    local s = sim.start { args = { "--rate", "0", "--drop-rate", "1", "--seed", "3" } }
    local c = client(s)
    for _ = 1, 4 do -- drops before and after reading the request
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      assert.equal("ClientError.NetworkError", err.code)
      assert.equal("network", err.kind)
      assert.is_true(err.retryable)
      assert.matches("^CURLE_", err.detail)
    end
    c:close()
    s:stop()
  end)

  it("a garbage body is ClientError.ParseJsonError", function()
    local s = sim.start { args = { "--rate", "0", "--garbage-rate", "1", "--seed", "5" } }
    local c = client(s)
    for _ = 1, 6 do
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      assert.equal("ClientError.ParseJsonError", err.code, tostring(err))
      assert.is_true(err.retryable)
      assert.equal(200, err.status)
    end
    c:close()
    s:stop()
  end)

  it("HTTP 503 is a retryable ClientError.HttpStatusCodeError; InternalError passes through", function()
    local s = sim.start { args = { "--rate", "0", "--fail-rate", "1", "--seed", "7" } }
    local c = client(s)
    local seen = {}
    for _ = 1, 40 do
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      if err.kind == "http" then
        assert.equal("ClientError.HttpStatusCodeError", err.code)
        assert.is_true(err.retryable)
        seen[err.status] = true
      else
        api_error("InternalError", true, nil, err)
        seen.InternalError = true
      end
      if seen[503] and seen.InternalError then break end
    end
    assert.is_true(seen[503])
    assert.is_true(seen.InternalError)
    c:close()
    s:stop()
  end)
end)
