-- The bad-input matrix: every Lua-facing function and option given nil, a
-- boolean, a number, NaN, a table, a function, a coroutine, a userdata, a
-- 10 MB string, an embedded NUL, CR/LF, invalid UTF-8 and a 100 KB URL.
-- Each call must end in one of:
--   * success (the value is acceptable there),
--   * `nil, err` with a well-formed error table (an expected failure),
--   * a Lua error whose message names the argument or field (a programming
--     error); a value of the wrong Lua type must always end this way.
-- Messages stay short (never the 10 MB value echoed back), and the
-- simulator's counters prove nothing reaches the wire except whole requests
-- that got a whole answer.
local ecdn = require "ecdn"
local core = require "ecdn.core"
local sim = require "support.sim"
local merged = require("support.tables").merged

local TEN_MB = ("x"):rep(10 * 1024 * 1024)
local URL_100K = "https://www.example.com/" .. ("a"):rep(100 * 1024)

local BAD = {
  { name = "nil", type = "nil" },
  { name = "boolean", type = "boolean", value = true },
  { name = "number", type = "number", value = 42 },
  { name = "NaN", type = "number", value = 0 / 0 },
  { name = "table", type = "table", value = {} },
  { name = "function", type = "function", value = function() end },
  { name = "coroutine", type = "thread", value = coroutine.create(function() end) },
  { name = "userdata", type = "userdata", value = io.stdout },
  { name = "10 MB string", type = "string", value = TEN_MB },
  { name = "embedded NUL", type = "string", value = "abc\0def" },
  { name = "CR/LF", type = "string", value = "abc\r\nX-Injected: 1" },
  { name = "invalid UTF-8", type = "string", value = "abc\xff\xfe\xc0\x80" },
  { name = "100 KB URL", type = "string", value = URL_100K },
}

local KINDS = { api = true, network = true, http = true, client = true }
local MAX_MESSAGE = 2000

-- Runs f(...) and classifies the outcome: "ok", "fail" (nil, err) or "raise".
local function pack(...) return { n = select("#", ...), ... } end
local function outcome(f, ...)
  local r = pack(pcall(f, ...))
  if not r[1] then return "raise", r[2] end
  if r[2] == nil then return "fail", r[3] end
  return "ok", r[2]
end

local function check_error_table(err, where)
  assert(type(err) == "table", where .. ": err is not a table")
  assert(type(err.code) == "string" and err.code ~= "", where .. ": err.code")
  assert(type(err.message) == "string", where .. ": err.message")
  assert(#err.message <= MAX_MESSAGE, where .. ": err.message is " .. #err.message .. " bytes")
  assert(KINDS[err.kind], where .. ": err.kind " .. tostring(err.kind))
  assert(type(err.retryable) == "boolean", where .. ": err.retryable")
  local line = tostring(err)
  assert(type(line) == "string" and not line:find("\n"), where .. ": tostring(err)")
end

-- The contract for one call; `name` is what a raised message must mention.
-- Returns the outcome and the value (result, err or message).
local function check(where, name, wrong_type, f, ...)
  local kind, v = outcome(f, ...)
  if kind == "raise" then
    assert(type(v) == "string", where .. ": raised a non-string " .. type(v))
    assert(#v <= MAX_MESSAGE, where .. ": raised a " .. #v .. "-byte message")
    assert(v:find(name, 1, true), where .. ": the error does not name '" .. name .. "': " .. v)
  else
    assert(not wrong_type, where .. ": a value of the wrong type was not refused with an error (" .. kind .. ")")
    if kind == "fail" then check_error_table(v, where) end
  end
  return kind, v
end

local function copy(t, k, v)
  local c = {}
  for kk, vv in pairs(t) do c[kk] = vv end
  c[k] = v
  return c
end

-- Wire accounting: requests the simulator received vs answers it sent, and
-- connections it accepted.
local function wire(s)
  local st = s:stats()
  local answered = 0
  for _, n in pairs(st.http or {}) do answered = answered + n end
  return { requests = st.requests, answered = answered, connections = st.connections, dropped = st.dropped }
end

describe("bad input", function()
  local s, base

  setup(function()
    s = sim.start{ args = { "--rate", "0", "--quota", "100000000" } }
    base = { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, timeout = 5,
             connect_timeout = 2 }
  end)

  teardown(function()
    if s then s:stop() end
  end)

  -- Runs fn and asserts what reached the simulator: nothing at all when
  -- `sent` is 0, else exactly `sent` requests, each one answered whole (the
  -- simulator answers even the requests it refuses before counting them,
  -- such as a body over 10 MB).
  local function on_wire(where, sent, fn)
    local before = wire(s)
    fn()
    local after = wire(s)
    local answered = after.answered - before.answered
    assert(answered == sent, where .. ": " .. answered .. " requests answered by the simulator, want " .. sent)
    assert(after.requests - before.requests <= answered, where .. ": a request got no whole answer")
    assert(after.dropped == before.dropped, where .. ": the simulator dropped a connection")
    if sent == 0 then
      assert(after.connections == before.connections, where .. ": a connection was opened")
    end
  end

  describe("ecdn.client(opts)", function()
    local OPTION_TYPES = {
      secret_id = "string", secret_key = "string", token = "string", service = "string", endpoint = "string",
      version = "string", region = "string", language = "string", timeout = "number",
      connect_timeout = "number", verify = "boolean", cafile = "string", proxy = "string",
    }

    it("refuses a non-table options argument with an error naming the options", function()
      for _, b in ipairs(BAD) do
        if b.type ~= "table" and b.type ~= "nil" then
          on_wire("client(" .. b.name .. ")", 0, function()
            local kind = check("ecdn.client(" .. b.name .. ")", "options", true, ecdn.client, b.value)
            assert.equal("raise", kind)
          end)
        end
      end
    end)

    -- What each right-typed odd value must do, decided one by one: "raise"
    -- (a programming error), "fail" (nil, err: credentials are data), or
    -- "ok", then the first purge's outcome ("ok" or the error code).
    local S = { ["10 MB string"] = "raise", ["embedded NUL"] = "raise", ["CR/LF"] = "raise",
                ["invalid UTF-8"] = "raise", ["100 KB URL"] = "raise" }
    local CRED = { ["10 MB string"] = "fail", ["embedded NUL"] = "fail", ["CR/LF"] = "fail",
                   ["100 KB URL"] = "fail" }
    local EXPECT = {
      secret_id = merged(CRED, { ["invalid UTF-8"] = { "ok", "AuthFailure.SecretIdNotFound" } }),
      secret_key = merged(CRED, { ["invalid UTF-8"] = { "ok", "AuthFailure.SignatureFailure" } }),
      token = merged(CRED, { ["invalid UTF-8"] = { "ok", "AuthFailure.TokenFailure" } }),
      service = S, endpoint = S, language = S,
      version = merged(S, { ["invalid UTF-8"] = { "ok", "NoSuchVersion" } }),
      region = merged(S, { ["invalid UTF-8"] = { "ok", "ok" } }),
      timeout = { number = { "ok", "ok" }, NaN = "raise" },
      connect_timeout = { number = { "ok", "ok" }, NaN = "raise" },
      verify = { boolean = { "ok", "ok" } },
      -- A CA file is a path (unused over http://); a proxy is a URL curl parses when it sends.
      cafile = merged(S, { ["CR/LF"] = { "ok", "ok" }, ["invalid UTF-8"] = { "ok", "ok" } }),
      proxy = merged(S, { ["invalid UTF-8"] = { "ok", "ClientError.NetworkError" } }),
    }

    -- Without an endpoint the client would go to the real service: not from a test.
    local NIL = { secret_id = "fail", secret_key = "fail", endpoint = { "ok", "not sent" } }

    for field, want in pairs(OPTION_TYPES) do
      it("option '" .. field .. "': each bad value ends as decided for it", function()
        for _, b in ipairs(BAD) do
          local where = "ecdn.client{" .. field .. " = " .. b.name .. "}"
          local wrong = b.type ~= want and b.type ~= "nil"
          local expect = b.type == "nil" and (NIL[field] or { "ok", "ok" })
            or wrong and "raise" or EXPECT[field][b.name]
          assert(expect, where .. ": no decided outcome")
          local kind, c
          -- Creating a client never touches the network.
          on_wire(where, 0, function()
            kind, c = check(where, field, wrong, ecdn.client, copy(base, field, b.value))
          end)
          assert.equal(type(expect) == "table" and expect[1] or expect, kind, where)
          if kind == "fail" then
            assert.equal("ClientError.CredentialError", c.code, where)
            assert.is_false(c.sent, where)
          elseif kind == "ok" and expect[2] == "not sent" then
            assert.truthy(c:close(), where)
          elseif kind == "ok" then
            assert.equal("userdata", type(c), where)
            assert.equal("string", type(tostring(c)), where)
            -- An accepted odd value must not break the first request either.
            local k2, r = check(where .. " then purge", "urls", false, c.purge, c, { "https://www.example.com/a" })
            if expect[2] == "ok" then
              assert.equal("ok", k2, where .. " then purge")
            else
              assert.equal("fail", k2, where .. " then purge")
              assert.equal(expect[2], r.code, where .. " then purge")
            end
            assert.truthy(c:close(), where)
          end
        end
      end)
    end

    it("an unknown option name is an error naming it", function()
      local kind, msg = check("unknown option", "secret_ky", true, ecdn.client,
        copy(base, "secret_ky", "x"))
      assert.equal("raise", kind, msg)
    end)
  end)

  describe("client:purge(urls)", function()
    local c

    before_each(function()
      c = assert(ecdn.client(base))
    end)

    after_each(function()
      c:close()
    end)

    it("refuses a non-table urls argument with an error naming urls, nothing sent", function()
      for _, b in ipairs(BAD) do
        if b.type ~= "table" then
          on_wire("purge(" .. b.name .. ")", 0, function()
            local kind = check("purge(" .. b.name .. ")", "urls", true, c.purge, c, b.value)
            assert.equal("raise", kind)
          end)
        end
      end
    end)

    it("an empty list is an expected failure, nothing sent", function()
      on_wire("purge{}", 0, function()
        local kind, err = check("purge{}", "urls", false, c.purge, c, {})
        assert.equal("fail", kind)
        assert.equal("client", err.kind)
      end)
    end)

    it("each bad URL item is refused locally with the item's position, nothing sent", function()
      for _, b in ipairs(BAD) do
        -- nil cannot sit in a list; the 100 KB URL is well-formed (it goes to the service).
        if b.type ~= "nil" and b.value ~= URL_100K then
          for _, list in ipairs{ { b.value }, { "https://www.example.com/ok", b.value } } do
            local where = "purge{" .. (#list == 2 and "good, " or "") .. b.name .. "}"
            on_wire(where, 0, function()
              local kind, err = check(where, "urls", false, c.purge, c, list)
              assert.equal("fail", kind, where)
              assert.equal("client", err.kind, where)
              assert.equal(#list, err.index, where)
            end)
          end
        end
      end
    end)

    it("a 100 KB URL is one whole request and the service's error, not a crash or a partial send", function()
      on_wire("purge{100 KB URL}", 1, function()
        local kind, err = check("purge{100 KB URL}", "urls", false, c.purge, c, { URL_100K })
        assert.equal("fail", kind)
        assert.equal("api", err.kind)
        assert.equal("InvalidParameter.EcdnUrlExceedLength", err.code)
        assert.is_string(err.request_id)
      end)
    end)

    it("purge called on something that is not a client is an error", function()
      for _, b in ipairs(BAD) do
        on_wire("purge as " .. b.name, 0, function()
          local kind, msg = outcome(c.purge, b.value, { "https://www.example.com/a" })
          assert.equal("raise", kind, b.name)
          assert.truthy(msg:find("ecdn.client", 1, true) or msg:find("#1", 1, true)
            or msg:find("self", 1, true), msg)
        end)
      end
    end)

    it("a closed client refuses to purge with an error, nothing sent", function()
      c:close()
      on_wire("purge on closed", 0, function()
        local kind, msg = check("purge on closed", "closed", true, c.purge, c, { "https://www.example.com/a" })
        assert.equal("raise", kind, msg)
      end)
    end)
  end)

  describe("client:call(action, params)", function()
    local c

    before_each(function()
      c = assert(ecdn.client(base))
    end)

    after_each(function()
      c:close()
    end)

    it("any action that is not an API name is an error naming action, nothing sent", function()
      for _, b in ipairs(BAD) do
        on_wire("call(" .. b.name .. ")", 0, function()
          local kind = check("call(" .. b.name .. ")", "action", b.type ~= "string", c.call, c, b.value, {})
          assert.equal("raise", kind, b.name)
        end)
      end
    end)

    it("params that are not a table are an error naming params, nothing sent", function()
      for _, b in ipairs(BAD) do
        if b.type ~= "table" and b.type ~= "nil" then
          on_wire("call(params = " .. b.name .. ")", 0, function()
            local kind = check("call(params = " .. b.name .. ")", "params", true, c.call, c,
              "DescribePurgeQuota", b.value)
            assert.equal("raise", kind, b.name)
          end)
        end
      end
    end)

    it("each bad value inside params: whole request and answer, or an error naming params", function()
      -- Values JSON cannot hold raise before sending; every other value is
      -- the service's business and comes back as its answer: an API error,
      -- or HTTP 413 for a body over the 10 MB request limit.
      local EXPECT = {
        ["nil"] = { "fail", "api", "InvalidParameter.EcdnParamError" },
        boolean = { "fail", "api", "InvalidParameter" },
        number = { "fail", "api", "InvalidParameter" },
        NaN = { "raise" }, ["function"] = { "raise" }, coroutine = { "raise" }, userdata = { "raise" },
        table = { "fail", "api", "InvalidParameter" },
        ["10 MB string"] = { "fail", "http", "ClientError.HttpStatusCodeError" },
        ["embedded NUL"] = { "fail", "api", "InvalidParameter.EcdnParamError" },
        ["CR/LF"] = { "fail", "api", "InvalidParameter.EcdnParamError" },
        ["invalid UTF-8"] = { "fail", "api", "InvalidParameter.EcdnParamError" },
        ["100 KB URL"] = { "fail", "api", "InvalidParameter.EcdnUrlExceedLength" },
      }
      for _, b in ipairs(BAD) do
        local where = "call(PurgeUrlsCache, {Urls = {" .. b.name .. "}})"
        local want = EXPECT[b.name]
        local kind, v
        on_wire(where, want[1] == "raise" and 0 or 1, function()
          kind, v = check(where, "params", false, c.call, c, "PurgeUrlsCache", { Urls = { b.value } })
        end)
        assert.equal(want[1], kind, where)
        if kind == "fail" then
          assert.equal(want[2], v.kind, where)
          assert.equal(want[3], v.code, where)
          assert.is_true(v.sent, where)
        end
      end
    end)
  end)

  -- The signers raise for every refusal (they are programming interfaces).
  local function signer_matrix(fname, sign, valid, types)
    describe("core." .. fname .. "(t)", function()
      it("a non-table argument is an error naming the argument", function()
        for _, b in ipairs(BAD) do
          if b.type ~= "table" then
            local kind, msg = outcome(sign, b.value)
            assert.equal("raise", kind, b.name)
            -- (LuaJIT prints '?' for a function called through pcall, so no name check.)
            assert.truthy(msg:find("bad argument #1", 1, true) and msg:find("table expected", 1, true), msg)
          end
        end
      end)

      for field, want in pairs(types) do
        it("field '" .. field .. "': a signature or an error naming it", function()
          for _, b in ipairs(BAD) do
            local where = fname .. "{" .. field .. " = " .. b.name .. "}"
            local kind, r = check(where, field, b.type ~= want and b.type ~= "nil", sign,
              copy(valid, field, b.value))
            assert.are_not.equal("fail", kind, where) -- signers never return nil, err
            if kind == "ok" then assert.equal("string", type(r.signature), where) end
          end
        end)
      end
    end)
  end

  signer_matrix("sign_tc3", core.sign_tc3, {
    secret_id = "AKIDtest", secret_key = "key", service = "ecdn", host = "ecdn.tencentcloudapi.com",
    action = "PurgeUrlsCache", version = "2019-10-12", timestamp = 1700000000, payload = "{}",
  }, {
    secret_id = "string", secret_key = "string", service = "string", host = "string", action = "string",
    version = "string", timestamp = "number", payload = "string", region = "string", token = "string",
    language = "string", content_type = "string", sign_action = "boolean",
  })

  signer_matrix("sign_v1", core.sign_v1, {
    secret_id = "AKIDtest", secret_key = "key", host = "cdn.tencentcloudapi.com", action = "PurgeUrlsCache",
    version = "2018-06-06", timestamp = 1700000000, nonce = 1, params = { ["Urls.0"] = "https://a.com/x" },
  }, {
    secret_id = "string", secret_key = "string", host = "string", action = "string", version = "string",
    method = "string", path = "string", region = "string", token = "string", signature_method = "string",
    timestamp = "number", nonce = "number", params = "table",
  })

  describe("core.sign_v1 params entries", function()
    local valid = { secret_id = "AKIDtest", secret_key = "key", host = "cdn.tencentcloudapi.com",
                    action = "PurgeUrlsCache", version = "2018-06-06", timestamp = 1700000000, nonce = 1 }
    it("each bad value as a parameter: a signature or an error naming params", function()
      for _, b in ipairs(BAD) do
        local where = "sign_v1{params = {X = " .. b.name .. "}}"
        local wrong = b.type ~= "string" and b.type ~= "number" and b.type ~= "nil"
        local kind = check(where, "params", wrong, core.sign_v1, copy(valid, "params", { X = b.value }))
        assert.are_not.equal("fail", kind, where)
        if b.type == "number" and b.value ~= b.value then assert.equal("raise", kind, "NaN parameter") end
      end
    end)

    it("a key that is not a string is an error naming params", function()
      for _, b in ipairs(BAD) do
        if b.type ~= "nil" and b.type ~= "string" and not (b.type == "number" and b.value ~= b.value) then
          local kind = check("params key " .. b.name, "params", true, core.sign_v1,
            copy(valid, "params", { [b.value] = "x" }))
          assert.equal("raise", kind, b.name)
        end
      end
    end)
  end)
end)
