-- credentials.cvm_role against a fake CVM metadata service on 127.0.0.1
-- (spec/support/metadata_server.lua, a child process): the role name, the
-- temporary credentials and their expiry, every bad answer, an unreachable or
-- silent service; and the default chain's metadata probe (within 1 s, asked
-- once per process and endpoint, remembered; a host that did not answer is
-- asked again PROBE_AGAIN seconds later).
local credentials = require "ecdn.credentials"
local errors = require "ecdn.errors"
local socket = require "socket"
local meta = require "support.metadata_server"
local proc = require "support.proc"

local EXP = 1900000000

local function cvm_error(c, err)
  assert.is_nil(c)
  assert.is_true(errors.is_error(err))
  assert.equal("ClientError.CredentialError", err.code)
  assert.equal("cvm_role", err.provider)
  for g = 1, 3 do
    local id, key, token = meta.creds(g)
    for _, secret in ipairs { id, key, token } do
      assert.is_nil(tostring(err):find(secret, 1, true), "a secret in the error: " .. tostring(err))
    end
  end
  return err
end

describe("credentials.cvm_role", function()
  local m
  setup(function() m = meta.start() end)
  teardown(function() m:stop() end)
  before_each(function()
    m:set { role = "ecdn-role", generation = 1, expired_time = EXP, mode = "ok", role_listing = false }
  end)

  it("finds the role, then yields its temporary credentials with ExpiredTime as expires_at", function()
    local c = assert(credentials.cvm_role { endpoint = m.url }:get(0))
    local id, key, token = meta.creds(1)
    assert.same({ secret_id = id, secret_key = key, token = token, expires_at = EXP,
                  source = "cvm_role ecdn-role" }, c)
    assert.equal(1, m:count(meta.ROLES_PATH))
    assert.equal(1, m:count("ecdn-role"))
    assert.equal(math.type and "integer" or "number", math.type and math.type(c.expires_at) or type(c.expires_at))
  end)

  it("asks again at each get: new credentials once the service rotated them", function()
    local p = credentials.cvm_role { endpoint = m.url .. "/" }
    assert.equal(meta.creds(1), assert(p:get(0)).secret_id)
    m:set { generation = 2, expired_time = EXP + 3600 }
    local c = assert(p:get(0))
    assert.equal(meta.creds(2), c.secret_id)
    assert.equal(EXP + 3600, c.expires_at)
  end)

  it("with a role given, asks only for that role", function()
    m:set { role = "other-role" }
    local before = m:count(meta.ROLES_PATH)
    local c = assert(credentials.cvm_role { endpoint = m.url, role = "other-role" }:get(0))
    assert.equal("cvm_role other-role", c.source)
    assert.equal(before, m:count(meta.ROLES_PATH))
  end)

  it("takes the first line of the role listing, trimmed", function()
    m:set { role_listing = "  ecdn-role\r\nsecond-role\n" }
    assert.equal("cvm_role ecdn-role", assert(credentials.cvm_role { endpoint = m.url }:get(0)).source)
  end)

  it("no role bound (404) is absent", function()
    m:set { role = false }
    local err = cvm_error(credentials.cvm_role { endpoint = m.url }:get(0))
    assert.is_true(err.absent)
    assert.truthy(err.message:find("no CAM role is bound", 1, true), err.message)
  end)

  it("a role the service does not know is an error (not absent)", function()
    local err = cvm_error(credentials.cvm_role { endpoint = m.url, role = "nosuchrole" }:get(0))
    assert.is_nil(err.absent)
    assert.truthy(err.message:find("knows no role nosuchrole", 1, true), err.message)
  end)

  it("an invalid role name in the listing is refused without quoting it", function()
    m:set { role_listing = "../../evil role" }
    local err = cvm_error(credentials.cvm_role { endpoint = m.url }:get(0))
    assert.truthy(err.message:find("no valid role name", 1, true), err.message)
    assert.is_nil(err.message:find("evil", 1, true))
  end)

  it("HTTP 500 is a retryable error", function()
    m:set { mode = "error500" }
    local err = cvm_error(credentials.cvm_role { endpoint = m.url }:get(0))
    assert.is_true(err.retryable)
    assert.equal(500, err.status)
    assert.is_nil(err.absent)
  end)

  it("a body that is not JSON", function()
    m:set { mode = "garbage" }
    local err = cvm_error(credentials.cvm_role { endpoint = m.url }:get(0))
    assert.truthy(err.message:find("not a JSON object", 1, true), err.message)
  end)

  it("a Code other than Success", function()
    m:set { mode = "code" }
    local err = cvm_error(credentials.cvm_role { endpoint = m.url }:get(0))
    assert.truthy(err.message:find('did not answer Code "Success"', 1, true), err.message)
  end)

  it("no ExpiredTime", function()
    m:set { mode = "no_expiry" }
    local err = cvm_error(credentials.cvm_role { endpoint = m.url }:get(0))
    assert.truthy(err.message:find("no valid ExpiredTime", 1, true), err.message)
  end)

  it("a service that answers nothing within `timeout` is absent and retryable", function()
    m:set { mode = "hang" }
    local t0 = socket.gettime()
    local err = cvm_error(credentials.cvm_role { endpoint = m.url, timeout = 0.3 }:get(0))
    assert.is_true(socket.gettime() - t0 < 5)
    assert.is_true(err.absent)
    assert.is_true(err.retryable)
    assert.truthy(err.message:find("CURLE_OPERATION_TIMEDOUT", 1, true), err.message)
  end)

  it("an unreachable service is absent", function()
    local url = "http://127.0.0.1:" .. proc.closed_port()
    local err = cvm_error(credentials.cvm_role { endpoint = url }:get(0))
    assert.is_true(err.absent)
    assert.truthy(err.message:find(url, 1, true), err.message)
    assert.truthy(err.message:find("CURLE_COULDNT_CONNECT", 1, true), err.message)
  end)

  it("never takes a proxy from the environment (a child with http_proxy set)", function()
    local code = 'local c = assert(require("ecdn.credentials").cvm_role{ endpoint = "' .. m.url .. '" }:get(0)) '
      .. 'io.write(c.source)'
    local out, rc = proc.run("http_proxy=http://127.0.0.1:" .. proc.closed_port() .. " " .. proc.env .. " "
      .. proc.lua .. " -e " .. proc.quote(code) .. " 2>&1")
    assert.equal(0, rc, out)
    assert.equal("cvm_role ecdn-role", out)
  end)

  it("raises on bad options", function()
    assert.has_error(function() credentials.cvm_role { endpoint = "ftp://x" } end)
    assert.has_error(function() credentials.cvm_role { endpoint = "http://x/latest" } end)
    assert.has_error(function() credentials.cvm_role { role = "a/b" } end)
    assert.has_error(function() credentials.cvm_role { timeout = 0 } end)
    assert.has_error(function() credentials.cvm_role { timeout = "1" } end)
  end)

  it("defaults to http://metadata.tencentyun.com", function()
    assert.equal("http://metadata.tencentyun.com", credentials.DEFAULT_METADATA_ENDPOINT)
  end)
end)

describe("credentials.default and the metadata service", function()
  local function default(endpoint)
    return credentials.default { getenv = function() end, profile = { system_file = "/nonexistent/credentials" },
                                 cvm_role = { endpoint = endpoint } }
  end

  it("ends with the CVM role when the metadata host answers; asks it once per process", function()
    local m = meta.start { expired_time = EXP }
    finally(function() m:stop() end)
    local c = assert(default(m.url):get(0))
    assert.equal("cvm_role ecdn-role", c.source)
    assert.equal(EXP, c.expires_at)
    assert(default(m.url):get(0)) -- another chain, same process, same endpoint
    assert.equal(1, m:count("/latest/meta-data/"))
    assert.equal(2, m:count("ecdn-role"))
  end)

  it("the remembered answer holds even when the host later stops answering", function()
    local m = meta.start()
    finally(function() m:stop() end)
    assert(default(m.url):get(0))
    m:set { mode = "error500" }
    local err = cvm_error(default(m.url):get(0))
    assert.equal(500, err.status) -- asked for credentials, not probed again
    assert.equal(1, m:count("/latest/meta-data/"))
  end)

  it("a host that does not answer within 1 s is left out, remembered; the error lists every step", function()
    local m = meta.start { mode = "hang" }
    finally(function() m:stop() end)
    -- The transports made meanwhile, with their options: the probe's 1 s is
    -- read there, not from the clock (how much later the error comes is the
    -- machine's business).
    local core = require "ecdn.core"
    local made, http = {}, core.http
    core.http = function(o) made[#made + 1] = o return http(o) end
    finally(function() core.http = http end)
    local t0 = socket.gettime()
    local c, err = default(m.url):get(0)
    local first = socket.gettime() - t0
    assert.is_nil(c)
    assert.same({ { timeout = 1, connect_timeout = 1, proxy = "" } }, made)
    assert.is_true(first >= 0.9, "probe took " .. first) -- it waited for the answer that never came
    assert.is_true(err.absent)
    local names = {}
    for _, t in ipairs(err.tried) do names[#names + 1] = t.name end
    assert.same({ "options", "environment", "profile", "cvm_role" }, names)
    assert.truthy(err.message:find("did not answer within 1 s", 1, true), err.message)
    m:set { mode = "ok" } -- answers now, but the probe's answer is remembered
    c = default(m.url):get(0)
    assert.is_nil(c)
    assert.equal(1, #made) -- no second probe, no transport at all
    assert.equal(1, m:count("/latest/meta-data/"))
    assert.equal(0, m:count("ecdn-role"))
    c = default(m.url):get(credentials.PROBE_AGAIN - 1)
    assert.is_nil(c)
    assert.equal(1, m:count("/latest/meta-data/"))
    -- PROBE_AGAIN seconds later (the chain's clock) it is asked again: a process that started
    -- while the metadata service was down finds its role
    c = assert(default(m.url):get(credentials.PROBE_AGAIN))
    assert.equal("cvm_role ecdn-role", c.source)
    assert.equal(2, m:count("/latest/meta-data/"))
  end)

  it("an unreachable host is left out at once", function()
    local url = "http://127.0.0.1:" .. proc.closed_port()
    local c, err = default(url):get(0)
    assert.is_nil(c)
    assert.is_true(err.absent)
    assert.equal("cvm_role", err.tried[4].name)
  end)

  it("is not asked when an earlier step yields", function()
    local m = meta.start()
    finally(function() m:stop() end)
    local c = assert(credentials.default { secret_id = "AKIDx", secret_key = "k",
                                           cvm_role = { endpoint = m.url } }:get(0))
    assert.equal("options", c.source)
    assert.equal(0, m:count("/latest/meta-data/"))
  end)
end)
