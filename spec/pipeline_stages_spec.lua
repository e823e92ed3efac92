-- The pipeline's stages used alone and composed by hand (request building ->
-- signing -> transport -> decoding) against the simulator, and replacing the
-- credentials of a live client.
local ecdn = require "ecdn"
local core = require "ecdn.core"
local request = require "ecdn.request"
local signer = require "ecdn.signer"
local decode = require "ecdn.decode"
local endpoint = require "ecdn.endpoint"
local sim = require "support.sim"
local proc = require "support.proc"

local ONE = { "AKIDpipelineONE000001", "pipeline-key-one" }
local TWO = { "AKIDpipelineTWO000002", "pipeline-key-two" }

local function entry_for(s, task_id)
  for _, e in ipairs(s:log_entries()) do
    if e.task_id == task_id then return e end
  end
end

local function target_of(s)
  local url, host = endpoint.parse(s.url)
  return { url = url, host = host, service = "ecdn", version = sim.VERSIONS.ecdn }
end

describe("stages composed by hand", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0", "--seed", "3" }, log = true } end)
  teardown(function() s:stop() end)

  it("purge_urls -> tc3 -> core.http:request -> decode.task gives a task the simulator logged", function()
    local urls = { "https://www.example.com/stages/a.jpg", "http://www.example.com/stages/b?v=1" }
    local body, problem = request.purge_urls(urls)
    assert.is_nil(problem)
    assert.is_string(body)
    local req = signer.tc3(target_of(s), { secret_id = s.secret_id, secret_key = s.secret_key },
      "PurgeUrlsCache", body, os.time())
    assert.equal("POST", req.method)
    assert.equal(s.url .. "/", req.url)
    assert.equal(body, req.body)
    assert.is_string(req.headers.Authorization or req.headers.authorization)

    local http = core.http { timeout = 10 }
    local raw, failure = http:request(req)
    assert.is_nil(failure)
    assert.equal(200, raw.status)
    assert.equal(1, raw.attempts)
    assert.is_string(raw.body)
    for name in pairs(raw.headers) do assert.equal(name:lower(), name) end
    assert.truthy(raw.headers["content-type"]:find("application/json", 1, true))

    local res, err = decode.task(raw, failure)
    assert.is_nil(err)
    assert.equal(1, res.attempts)
    local e = assert(entry_for(s, res.task_id), "task not in the simulator's log")
    assert.equal(res.request_id, e.request_id)
    assert.same(urls, e.urls)
    assert.equal(s.secret_id, e.secret_id)
    http:close()
  end)

  it("one transport keeps one connection across requests", function()
    local http = core.http { timeout = 10 }
    local before = s:stats().connections
    for i = 1, 5 do
      local body = assert(request.purge_urls { "https://www.example.com/stages/keep-" .. i })
      local req = signer.tc3(target_of(s), { secret_id = s.secret_id, secret_key = s.secret_key },
        "PurgeUrlsCache", body, os.time())
      local res = assert(decode.task(http:request(req)))
      assert.same({ "https://www.example.com/stages/keep-" .. i }, assert(entry_for(s, res.task_id)).urls)
    end
    assert.equal(before + 1, s:stats().connections)
    http:close()
  end)

  it("a wrong key signs a request the service refuses; decode gives the API error", function()
    local body = assert(request.purge_urls { "https://www.example.com/stages/wrong-key" })
    local req = signer.tc3(target_of(s), { secret_id = s.secret_id, secret_key = "not-the-key" },
      "PurgeUrlsCache", body, os.time())
    local http = core.http { timeout = 10 }
    local res, err = decode.task(http:request(req))
    assert.is_nil(res)
    assert.equal("AuthFailure.SignatureFailure", err.code)
    assert.equal("api", err.kind)
    assert.is_true(err.sent)
    http:close()
  end)

  it("request building refuses a URL without a host; decode.local_error names it", function()
    local body, problem = request.purge_urls { "https://www.example.com/ok", "https://@/x" }
    assert.is_nil(body)
    assert.equal("client", problem.kind)
    assert.equal(2, problem.index)
    assert.equal("no_host", problem.problem)
    local err = decode.local_error(problem, "ecdn", "URL")
    assert.equal("ClientError.InvalidParameter", err.code)
    assert.is_false(err.sent)
    assert.equal(2, err.index)
  end)

  it("a transport failure decodes to a network error that was not sent", function()
    local http = core.http { timeout = 5 }
    local body = assert(request.purge_urls { "https://www.example.com/stages/refused" })
    local req = signer.tc3({ url = "http://127.0.0.1:" .. proc.closed_port() .. "/", host = "127.0.0.1",
                             service = "ecdn", version = sim.VERSIONS.ecdn },
      { secret_id = s.secret_id, secret_key = s.secret_key }, "PurgeUrlsCache", body, os.time())
    local raw, failure = http:request(req)
    assert.is_nil(raw)
    assert.equal("CURLE_COULDNT_CONNECT", failure.detail)
    assert.is_false(failure.sent)
    local res, err = decode.task(raw, failure)
    assert.is_nil(res)
    assert.equal("ClientError.NetworkError", err.code)
    assert.equal("network", err.kind)
    assert.equal("CURLE_COULDNT_CONNECT", err.detail)
    assert.is_false(err.sent)
    assert.is_true(err.retryable)
    http:close()
  end)

  it("decode.outcome gives call()'s Response for any action", function()
    local http = core.http { timeout = 10 }
    local req = signer.tc3(target_of(s), { secret_id = s.secret_id, secret_key = s.secret_key },
      "DescribePurgeQuota", request.action {}, os.time())
    local resp, err = decode.outcome(http:request(req))
    assert.is_nil(err)
    assert.is_string(resp.RequestId)
    assert.is_table(resp.UrlPurge)
    assert.equal(1, resp.attempts)
    http:close()
  end)
end)

describe("set_credentials on a live client", function()
  local s
  setup(function()
    s = sim.start { args = { "--rate", "0", "--secret", ONE[1] .. ":" .. ONE[2], "--secret", TWO[1] .. ":" .. TWO[2] },
                    log = true }
  end)
  teardown(function() s:stop() end)

  local function purge_as(c, url, id)
    local res, err = c:purge { url }
    assert.is_nil(err, tostring(err))
    assert.equal(1, res.attempts)
    local e = assert(entry_for(s, res.task_id))
    assert.same({ url }, e.urls)
    assert.equal(id, e.secret_id)
    return res
  end

  it("the second pair works on the same connection; refused sets change nothing", function()
    local c = assert(ecdn.client { secret_id = ONE[1], secret_key = ONE[2], endpoint = s.url, timeout = 10 })
    purge_as(c, "https://www.example.com/cred/1", ONE[1])
    local conns = s:stats().connections

    assert.is_true(c:set_credentials { secret_id = TWO[1], secret_key = TWO[2] })
    assert.equal("set_credentials", c:info().credential_source)
    purge_as(c, "https://www.example.com/cred/2", TWO[1])
    assert.equal(conns, s:stats().connections)

    for i, bad in ipairs {
      { secret_id = ONE[1], secret_key = "" },
      { secret_id = ONE[1], secret_key = "key\rwith-CR" },
      { secret_id = "AKID\nLF", secret_key = ONE[2] },
      { secret_id = ONE[1], secret_key = ("k"):rep(65537) },
      { secret_id = ONE[1], secret_key = ONE[2], token = "tok\nen" },
      { secret_key = ONE[2] },
    } do
      local ok, err = c:set_credentials(bad)
      assert.is_nil(ok)
      assert.equal("ClientError.CredentialError", err.code)
      assert.is_false(err.sent)
      assert.is_nil(err.message:find("with-CR", 1, true))
      -- the old (second) pair still signs, on the same connection
      purge_as(c, "https://www.example.com/cred/after-refused-" .. i, TWO[1])
    end
    assert.equal(conns, s:stats().connections)
    c:close()
  end)

  it("the new key is really used: a wrong key fails, setting the right one mends it", function()
    local c = assert(ecdn.client { secret_id = ONE[1], secret_key = ONE[2], endpoint = s.url, timeout = 10 })
    purge_as(c, "https://www.example.com/cred2/1", ONE[1])
    assert.is_true(c:set_credentials { secret_id = ONE[1], secret_key = "a-wrong-key" })
    local res, err = c:purge { "https://www.example.com/cred2/wrong" }
    assert.is_nil(res)
    assert.equal("AuthFailure.SignatureFailure", err.code)
    assert.is_true(c:set_credentials { secret_id = "AKIDunknown0000000003", secret_key = ONE[2] })
    res, err = c:purge { "https://www.example.com/cred2/unknown" }
    assert.is_nil(res)
    assert.equal("AuthFailure.SecretIdNotFound", err.code)
    assert.is_true(c:set_credentials { secret_id = ONE[1], secret_key = ONE[2], token = "" })
    purge_as(c, "https://www.example.com/cred2/mended", ONE[1])
    c:close()
  end)

  it("programming errors raise; a closed client refuses", function()
    local c = assert(ecdn.client { secret_id = ONE[1], secret_key = ONE[2], endpoint = s.url })
    local ok, msg = pcall(c.set_credentials, c, "not a table")
    assert.is_false(ok)
    assert.truthy(msg:find("ecdn.client:set_credentials: argument must be a table", 1, true), msg)
    c:close()
    ok, msg = pcall(c.set_credentials, c, { secret_id = TWO[1], secret_key = TWO[2] })
    assert.is_false(ok)
    assert.truthy(msg:find("closed", 1, true), msg)
  end)
end)

describe("the client's own signer", function()
  it("holds the client's key (never the shared cache) and goes with set_credentials, close and collection",
    function()
    local s = sim.start { args = { "--rate", "0", "--secret", "AKIDcacheA0000000000000000000000000:keyA",
                                   "--secret", "AKIDcacheB0000000000000000000000000:keyB" } }
    finally(function() s:stop() end)
    collectgarbage()
    collectgarbage() -- (signers of earlier specs that are garbage go now, not in the middle)
    core.sign_cache_clear()
    local function prepared() return core.sign_cache_stats().prepared end
    local live = prepared()
    local c = assert(ecdn.client { secret_id = "AKIDcacheA0000000000000000000000000", secret_key = "keyA",
                                   endpoint = s.url, rate = 0 })
    assert(c:purge { "https://www.example.com/cache/1" }) -- (the simulator checks every signature)
    assert.equal(0, core.sign_cache_stats().entries)
    assert.equal(live + 1, prepared())
    assert(c:set_credentials { secret_id = "AKIDcacheB0000000000000000000000000", secret_key = "keyB" })
    assert.equal(live, prepared()) -- keyA's signer went with keyA
    assert(c:purge { "https://www.example.com/cache/2" })
    assert.equal(live + 1, prepared())
    c:close()
    assert.equal(live, prepared())
    local d = assert(ecdn.client { secret_id = "AKIDcacheA0000000000000000000000000", secret_key = "keyA",
                                   endpoint = s.url, rate = 0 })
    assert(d:purge { "https://www.example.com/cache/3" })
    assert.equal(live + 1, prepared())
    d = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal(live, prepared())
    assert.equal(0, core.sign_cache_stats().entries)
  end)
end)
