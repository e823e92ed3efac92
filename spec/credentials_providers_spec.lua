-- ecdn.credentials providers without a network: static, env (also inside
-- nginx), chain (absent vs broken sources), the default chain's first three
-- steps, and the old check/resolve/error the client uses. Every error is a
-- ClientError.CredentialError table that never holds a secret.
local credentials = require "ecdn.credentials"
local errors = require "ecdn.errors"
local proc = require "support.proc"

local ID, KEY, TOKEN = "AKIDcanaryprov000000000000000000000001", "CanaryProvSecretKey0001", "canary-prov-token-1"

local function getenv_of(t)
  return function(name) return t[name] end
end

-- Asserts a credential error; returns it.
local function cred_error(c, err, ...)
  assert.is_nil(c)
  assert.is_true(errors.is_error(err), "an error table from ecdn.errors")
  assert.equal("ClientError.CredentialError", err.code)
  assert.equal("client", err.kind)
  assert.is_false(err.sent)
  local text = tostring(err) .. "\n" .. err.message
  for _, secret in ipairs { ID, KEY, TOKEN, ... } do
    assert.is_nil(text:find(secret, 1, true), "a secret in the error: " .. text)
  end
  return err
end

-- A provider that counts its calls and answers what it is given.
local function fake(name, creds, err)
  local p = { name = name, calls = 0 }
  function p:get()
    self.calls = self.calls + 1
    if creds then return creds end
    local _, e = credentials.error(err.message)
    e.absent, e.provider = err.absent, name
    return nil, e
  end
  return p
end

describe("credentials.static", function()
  it("yields the given credentials, no expiry, source 'static'", function()
    local c = assert(credentials.static { secret_id = ID, secret_key = KEY, token = TOKEN }:get(0))
    assert.same({ secret_id = ID, secret_key = KEY, token = TOKEN, source = "static" }, c)
    assert.is_nil(c.expires_at)
  end)

  it("an empty token means none; source can be named", function()
    local c = assert(credentials.static { secret_id = ID, secret_key = KEY, token = "", source = "options" }:get(0))
    assert.is_nil(c.token)
    assert.equal("options", c.source)
  end)

  it("gives fresh tables: a caller changing one changes nothing else", function()
    local p = credentials.static { secret_id = ID, secret_key = KEY }
    local a = assert(p:get(0))
    a.secret_id = "changed"
    assert.equal(ID, assert(p:get(0)).secret_id)
  end)

  it("nothing given is absent", function()
    local err = cred_error(credentials.static {}:get(0))
    assert.is_true(err.absent)
    assert.equal("static", err.provider)
  end)

  for _, case in ipairs {
    { "only the id", { secret_id = ID }, "SecretKey is missing or empty" },
    { "an empty id", { secret_id = "", secret_key = KEY }, "SecretId is missing or empty" },
    { "whitespace around the key", { secret_id = ID, secret_key = " " .. KEY }, "SecretKey has leading" },
    { "CR in the id", { secret_id = ID .. "\r", secret_key = KEY }, "SecretId" },
    { "LF in the token", { secret_id = ID, secret_key = KEY, token = TOKEN .. "\nX" }, "session token contains" },
    { "a non-string key", { secret_id = ID, secret_key = 42 }, "SecretKey is missing" },
  } do
    it("refuses " .. case[1] .. ", naming the part, not absent", function()
      local err = cred_error(credentials.static(case[2]):get(0))
      assert.truthy(err.message:find(case[3], 1, true), err.message)
      assert.is_nil(err.absent)
    end)
  end

  it("raises for a non-table argument, at the caller's line", function()
    local ok, msg = pcall(credentials.static, "x")
    assert.is_false(ok)
    assert.truthy(msg:find("ecdn.credentials.static: argument must be a table", 1, true), msg)
  end)
end)

describe("credentials.env", function()
  local full = { TENCENTCLOUD_SECRET_ID = ID, TENCENTCLOUD_SECRET_KEY = KEY, TENCENTCLOUD_SESSION_TOKEN = TOKEN }

  it("reads TENCENTCLOUD_SECRET_ID, _SECRET_KEY and _SESSION_TOKEN", function()
    local c = assert(credentials.env { getenv = getenv_of(full) }:get(0))
    assert.same({ secret_id = ID, secret_key = KEY, token = TOKEN, source = "environment" }, c)
  end)

  it("reads them at each get", function()
    local vars = {}
    local p = credentials.env { getenv = getenv_of(vars) }
    cred_error(p:get(0))
    vars.TENCENTCLOUD_SECRET_ID, vars.TENCENTCLOUD_SECRET_KEY = ID, KEY
    assert.equal(ID, assert(p:get(0)).secret_id)
  end)

  it("a token option wins over TENCENTCLOUD_SESSION_TOKEN", function()
    local p = credentials.env { getenv = getenv_of(full), token = "from-option" }
    assert.equal("from-option", assert(p:get(0)).token)
  end)

  it("unset is absent, naming the variables (no nginx hint outside nginx)", function()
    local err = cred_error(credentials.env { getenv = getenv_of {} }:get(0))
    assert.is_true(err.absent)
    assert.equal("environment", err.provider)
    assert.truthy(err.message:find("TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are not set", 1, true))
    assert.is_nil(err.message:find("nginx", 1, true))
  end)

  it("set but empty, or half set, is an error that stops a chain (not absent)", function()
    local err = cred_error(credentials.env { getenv = getenv_of { TENCENTCLOUD_SECRET_ID = "",
                                                                  TENCENTCLOUD_SECRET_KEY = KEY } }:get(0))
    assert.is_nil(err.absent)
    assert.truthy(err.message:find("SecretId is missing or empty (from environment)", 1, true), err.message)
    err = cred_error(credentials.env { getenv = getenv_of { TENCENTCLOUD_SECRET_ID = ID } }:get(0))
    assert.is_nil(err.absent)
    assert.truthy(err.message:find("SecretKey", 1, true))
  end)

  describe("inside nginx (an ngx global with ngx.config)", function()
    local saved
    before_each(function()
      saved = rawget(_G, "ngx")
      rawset(_G, "ngx", { config = { subsystem = "http" } })
    end)
    after_each(function() rawset(_G, "ngx", saved) end)

    it("says nginx.conf needs env directives when the variables are not set", function()
      local err = cred_error(credentials.env { getenv = getenv_of {} }:get(0))
      for _, directive in ipairs { "env TENCENTCLOUD_SECRET_ID;", "env TENCENTCLOUD_SECRET_KEY;",
                                   "env TENCENTCLOUD_SESSION_TOKEN;" } do
        assert.truthy(err.message:find(directive, 1, true), err.message)
      end
      assert.truthy(err.message:find("nginx.conf", 1, true))
    end)

    it("and when only one of them reaches the worker", function()
      local err = cred_error(credentials.env { getenv = getenv_of { TENCENTCLOUD_SECRET_ID = ID } }:get(0))
      assert.truthy(err.message:find("env TENCENTCLOUD_SECRET_KEY;", 1, true), err.message)
    end)

    it("works as usual when they are set", function()
      assert.equal(ID, assert(credentials.env { getenv = getenv_of(full) }:get(0)).secret_id)
    end)
  end)

  it("reads the real environment by default (child process)", function()
    local code = 'local c = assert(require("ecdn.credentials").env():get(os.time())) '
      .. 'io.write(c.source, " ", #c.secret_id, " ", c.token == nil and "none" or "token")'
    local out, rc = proc.run("TENCENTCLOUD_SECRET_ID=AKIDfromenv0001 TENCENTCLOUD_SECRET_KEY=k "
      .. "TENCENTCLOUD_SESSION_TOKEN= " .. proc.env .. " " .. proc.lua .. " -e " .. proc.quote(code) .. " 2>&1")
    assert.equal(0, rc, out)
    assert.equal("environment 15 none", out)
  end)
end)

describe("credentials.chain", function()
  local absent = { message = "x: nothing here", absent = true }

  it("gives the first provider that yields and asks no further", function()
    local a, b = fake("a", nil, absent), fake("b", { secret_id = ID, secret_key = KEY, source = "b" })
    local c3 = fake("c", { secret_id = "other", secret_key = "other", source = "c" })
    local c = assert(credentials.chain { a, b, c3 }:get(0))
    assert.equal("b", c.source)
    assert.same({ 1, 1, 0 }, { a.calls, b.calls, c3.calls })
  end)

  it("passes `now` to each provider", function()
    local seen
    local p = { get = function(_, now) seen = now return { secret_id = ID, secret_key = KEY, source = "p" } end }
    credentials.chain { p }:get(1234)
    assert.equal(1234, seen)
  end)

  it("when every provider is absent, the error names each of them and is absent", function()
    local a = fake("a", nil, { message = "a: not set", absent = true })
    local b = fake("b", nil, { message = "b: no file", absent = true })
    local err = cred_error(credentials.chain { a, b }:get(0))
    assert.truthy(err.message:find("no credentials: a: not set; b: no file", 1, true), err.message)
    assert.same({ { name = "a", message = "a: not set" }, { name = "b", message = "b: no file" } }, err.tried)
    assert.is_true(err.absent)
  end)

  it("stops at a source that is there but broken, and names what it tried", function()
    local a = fake("a", nil, { message = "a: not set", absent = true })
    local b = fake("b", nil, { message = "b: malformed" })
    local c3 = fake("c", { secret_id = ID, secret_key = KEY, source = "c" })
    local err = cred_error(credentials.chain { a, b, c3 }:get(0))
    assert.equal(0, c3.calls)
    assert.equal("no credentials: a: not set; b: malformed", err.message)
    assert.equal("b", err.provider)
    assert.is_nil(err.absent)
  end)

  it("raises for an empty list or a non-provider", function()
    assert.has_error(function() credentials.chain {} end)
    local ok, msg = pcall(credentials.chain, { credentials.env(), "nope" })
    assert.is_false(ok)
    assert.truthy(msg:find("item 2 is not a provider", 1, true), msg)
  end)
end)

describe("credentials.default without the metadata service (cvm_role = false)", function()
  local dir, home_file
  setup(function()
    dir = proc.tmpname()
    assert(os.execute("mkdir -p " .. dir .. "/.tencentcloud"))
    home_file = dir .. "/.tencentcloud/credentials"
    local f = assert(io.open(home_file, "w"))
    f:write("[default]\nsecret_id = AKIDprofile00000000000000000000000001\nsecret_key = ProfileKey0001\n")
    f:close()
  end)
  teardown(function() os.execute("rm -rf " .. proc.quote(dir)) end)

  local function default(opts, vars)
    opts.getenv = getenv_of(vars)
    opts.cvm_role = false
    opts.profile = opts.profile or { system_file = dir .. "/no-system-file" }
    return credentials.default(opts)
  end

  it("the secret_id/secret_key options first, source 'options'", function()
    local c = assert(default({ secret_id = ID, secret_key = KEY, token = TOKEN },
                             { TENCENTCLOUD_SECRET_ID = "AKIDenv", TENCENTCLOUD_SECRET_KEY = "k", HOME = dir }):get(0))
    assert.same({ secret_id = ID, secret_key = KEY, token = TOKEN, source = "options" }, c)
  end)

  it("bad options stop the chain: the environment is not used instead", function()
    local err = cred_error(default({ secret_id = ID, secret_key = KEY .. "\nX" },
                                   { TENCENTCLOUD_SECRET_ID = "AKIDenv", TENCENTCLOUD_SECRET_KEY = "k" }):get(0))
    assert.truthy(err.message:find("SecretKey contains CR, LF or NUL (from options)", 1, true), err.message)
  end)

  it("then the environment (a token option still applies)", function()
    local c = assert(default({ token = "opt-token" }, { TENCENTCLOUD_SECRET_ID = "AKIDenv",
                                                        TENCENTCLOUD_SECRET_KEY = "k", HOME = dir }):get(0))
    assert.same({ secret_id = "AKIDenv", secret_key = "k", token = "opt-token", source = "environment" }, c)
  end)

  it("then the profile file", function()
    local c = assert(default({}, { HOME = dir }):get(0))
    assert.equal("AKIDprofile00000000000000000000000001", c.secret_id)
    assert.equal("profile " .. home_file .. " [default]", c.source)
  end)

  it("a token option without secret_id/secret_key is never sent with the profile file's identity", function()
    local err = cred_error(default({ token = "opt-token" }, { HOME = dir }):get(0))
    assert.truthy(err.message:find("a session token was given, but no secret_id/secret_key with it", 1, true),
                  err.message)
    assert.truthy(err.message:find("profile " .. home_file, 1, true), err.message)
    assert.is_nil(err.message:find("opt-token", 1, true))
    -- "" is no token, as everywhere else
    local c = assert(default({ token = "" }, { HOME = dir }):get(0))
    assert.equal("AKIDprofile00000000000000000000000001", c.secret_id)
  end)

  it("profile options pass through (file, name)", function()
    local err = cred_error(default({ profile = { file = home_file, name = "prod" } }, {}):get(0))
    assert.truthy(err.message:find("no section [prod]", 1, true), err.message)
  end)

  it("nothing anywhere: one absent error naming options, environment and profile", function()
    local err = cred_error(default({}, { HOME = dir .. "/nohome" }):get(0))
    assert.is_true(err.absent)
    local names = {}
    for _, t in ipairs(err.tried) do names[#names + 1] = t.name end
    assert.same({ "options", "environment", "profile" }, names)
    assert.truthy(err.message:find("TENCENTCLOUD_SECRET_ID", 1, true))
    assert.truthy(err.message:find(dir .. "/nohome/.tencentcloud/credentials", 1, true), err.message)
  end)
end)

describe("the functions the client already uses", function()
  it("check/resolve/error behave as before", function()
    assert.is_true(credentials.check(ID, KEY, nil))
    cred_error(credentials.check(ID, "", nil))
    local c = assert(credentials.resolve({}, getenv_of { TENCENTCLOUD_SECRET_ID = ID, TENCENTCLOUD_SECRET_KEY = KEY }))
    assert.same({ secret_id = ID, secret_key = KEY, source = "environment" }, c)
    cred_error(credentials.resolve({}, getenv_of {}))
    local err = cred_error(credentials.error("plain message"))
    assert.equal("plain message", err.message)
    assert.is_false(err.retryable)
  end)
end)
