-- credentials.refresher: rotation with an injected clock (no timing luck).
-- Credentials that expire are fetched again before they do, at most 5 minutes
-- early and at most half their lifetime early; a failed refresh keeps the old
-- ones while they are valid and is retried after a back-off, not on every
-- call. End to end: cvm_role against the fake metadata service, and a client
-- that purges through the simulator across a rotation without one failure.
local credentials = require "ecdn.credentials"
local errors = require "ecdn.errors"
local meta = require "support.metadata_server"

local T0 = 1700000000

-- A scripted provider: p.next = creds to hand out (or p.fail = message); counts calls.
local function scripted()
  local p = { calls = 0, seen = {} }
  function p:get(now)
    self.calls = self.calls + 1
    self.seen[#self.seen + 1] = now
    if self.fail then
      local _, e = credentials.error(self.fail)
      e.provider = "scripted"
      return nil, e
    end
    return self.next
  end
  return p
end

local function creds(gen, expires_at, token)
  return { secret_id = "AKIDrot" .. gen, secret_key = "RotKey" .. gen, token = token, expires_at = expires_at,
           source = "scripted" }
end

-- A refresher on a clock the test moves: returns r, set_time(t).
local function refresher(p, opts)
  local now = T0
  local r = credentials.refresher(p, function() return now end, opts)
  return r, function(t) now = t end
end

describe("credentials.refresher", function()
  it("first call: the provider's credentials, changed = true; then the same table, changed = false", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600)
    local r = refresher(p)
    local c, changed = r:current()
    assert.is_true(changed)
    assert.same(creds(1, T0 + 3600), c)
    local c2, changed2 = r:current()
    assert.equal(c, c2)
    assert.is_false(changed2)
    assert.equal(1, p.calls)
    assert.same({ T0 }, p.seen)
  end)

  it("credentials without expiry are fetched once, ever", function()
    local p = scripted()
    p.next = creds(1, nil)
    local r, at = refresher(p)
    assert(r:current())
    at(T0 + 10 * 365 * 86400)
    assert(r:current())
    assert.equal(1, p.calls)
  end)

  it("long-lived credentials: refreshed 5 minutes before they expire, not a second earlier", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600)
    local r, at = refresher(p)
    assert(r:current())
    p.next = creds(2, T0 + 7200)
    at(T0 + 3600 - 301)
    local c, changed = r:current()
    assert.equal("AKIDrot1", c.secret_id)
    assert.is_false(changed)
    assert.equal(1, p.calls)
    at(T0 + 3600 - 300)
    c, changed = r:current()
    assert.equal("AKIDrot2", c.secret_id)
    assert.is_true(changed)
    assert.equal(2, p.calls)
    assert.same({ T0, T0 + 3300 }, p.seen)
    -- and the new ones on the same rule
    at(T0 + 7200 - 301)
    assert.equal("AKIDrot2", r:current().secret_id)
    assert.equal(2, p.calls)
  end)

  it("short-lived credentials: refreshed at half their lifetime, not at 5 minutes", function()
    local p = scripted()
    p.next = creds(1, T0 + 120)
    local r, at = refresher(p)
    assert(r:current())
    p.next = creds(2, T0 + 240)
    at(T0 + 59)
    assert.equal("AKIDrot1", r:current().secret_id)
    at(T0 + 60)
    assert.equal("AKIDrot2", r:current().secret_id)
    assert.equal(2, p.calls)
  end)

  it("a failed refresh keeps the old credentials while valid and retries after 10 s, not on every call", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600)
    local r, at = refresher(p)
    assert(r:current())
    p.fail = "metadata down"
    at(T0 + 3300)
    local c, changed = r:current()
    assert.equal("AKIDrot1", c.secret_id)
    assert.is_false(changed)
    assert.equal(2, p.calls)
    assert.equal("metadata down", r.last_error.message)
    for t = T0 + 3300, T0 + 3309 do
      at(t)
      assert.equal("AKIDrot1", r:current().secret_id)
    end
    assert.equal(2, p.calls) -- no call during the back-off
    at(T0 + 3310)
    assert.equal("AKIDrot1", r:current().secret_id)
    assert.equal(3, p.calls) -- tried again, failed again
    p.fail = nil
    p.next = creds(2, T0 + 7200)
    at(T0 + 3319)
    assert.equal("AKIDrot1", r:current().secret_id)
    at(T0 + 3320)
    c, changed = r:current()
    assert.equal("AKIDrot2", c.secret_id)
    assert.is_true(changed)
    assert.equal(4, p.calls)
    assert.is_nil(r.last_error)
  end)

  it("the back-off is an option", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600)
    local r, at = refresher(p, { backoff = 60 })
    assert(r:current())
    p.fail = "down"
    at(T0 + 3300)
    r:current()
    at(T0 + 3359)
    r:current()
    assert.equal(2, p.calls)
    at(T0 + 3360)
    r:current()
    assert.equal(3, p.calls)
  end)

  it("once they have expired and the refresh fails: the provider's error, asked again at every call", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600)
    local r, at = refresher(p)
    assert(r:current())
    p.fail = "metadata down"
    at(T0 + 3599)
    assert.equal("AKIDrot1", r:current().secret_id) -- still valid: kept
    at(T0 + 3600)
    local c, err = r:current()
    assert.is_nil(c)
    assert.is_true(errors.is_error(err))
    assert.equal("ClientError.CredentialError", err.code)
    assert.equal("metadata down", err.message)
    local calls = p.calls
    r:current()
    r:current()
    assert.equal(calls + 2, p.calls) -- nothing valid to give: no back-off
    p.fail = nil
    p.next = creds(2, T0 + 7200)
    local changed
    c, changed = r:current()
    assert.equal("AKIDrot2", c.secret_id)
    assert.is_true(changed)
  end)

  it("no credentials at all: the provider's error", function()
    local p = scripted()
    p.fail = "nothing configured"
    local c, err = refresher(p):current()
    assert.is_nil(c)
    assert.equal("nothing configured", err.message)
  end)

  it("the same credentials again (not rotated yet): changed = false, then the back-off, then again", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600, "tok")
    local r, at = refresher(p)
    local first = r:current()
    at(T0 + 3300)
    p.next = creds(1, T0 + 3600, "tok")
    local c, changed = r:current()
    assert.equal(first, c)
    assert.is_false(changed)
    assert.equal(2, p.calls)
    at(T0 + 3309)
    r:current()
    assert.equal(2, p.calls)
    at(T0 + 3310)
    p.next = creds(1, T0 + 7200, "tok") -- same keys, later expiry: refresh moves out
    c, changed = r:current()
    assert.is_false(changed)
    assert.equal(T0 + 7200, c.expires_at)
    assert.equal(3, p.calls)
    at(T0 + 7200 - 301)
    r:current()
    assert.equal(3, p.calls)
  end)

  it("a new token alone is a change", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600, "tok1")
    local r, at = refresher(p)
    r:current()
    p.next = creds(1, T0 + 7200, "tok2")
    at(T0 + 3300)
    local c, changed = r:current()
    assert.is_true(changed)
    assert.equal("tok2", c.token)
  end)

  it("credentials that have already expired are refused (check the clock)", function()
    local p = scripted()
    p.next = creds(1, T0)
    local c, err = refresher(p):current()
    assert.is_nil(c)
    assert.truthy(err.message:find("expired before use", 1, true), err.message)
    assert.is_nil(err.message:find("RotKey1", 1, true))
  end)

  it("bad credentials from a provider of one's own are refused without quoting them", function()
    local p = scripted()
    p.next = { secret_id = "AKIDrot1", secret_key = "RotKey1\n", source = "mine" }
    local c, err = refresher(p):current()
    assert.is_nil(c)
    assert.equal("ClientError.CredentialError", err.code)
    assert.is_nil(err.message:find("RotKey1", 1, true))
    p.next = { secret_id = "AKIDrot1", secret_key = "RotKey1", expires_at = "soon", source = "mine" }
    c, err = refresher(p):current()
    assert.is_nil(c)
    assert.truthy(err.message:find("invalid expires_at", 1, true), err.message)
  end)

  it("invalidate() makes the next call refresh", function()
    local p = scripted()
    p.next = creds(1, T0 + 3600)
    local r = refresher(p)
    r:current()
    p.next = creds(2, T0 + 3600)
    r:invalidate()
    local c, changed = r:current()
    assert.equal("AKIDrot2", c.secret_id)
    assert.is_true(changed)
  end)

  it("credentials without expiry on the system clock: kept without reading it or asking again, until invalidate()",
    function()
    local real = os.time
    local reads = 0
    os.time = function(...) reads = reads + 1 return real(...) end -- luacheck: ignore 122
    finally(function() os.time = real end) -- luacheck: ignore 122
    local p = scripted()
    p.next = creds(1)
    local r = credentials.refresher(p) -- the default clock: os.time
    local c, changed = r:current()
    assert.equal("AKIDrot1", c.secret_id)
    assert.is_true(changed)
    local calls, first_reads = p.calls, reads
    for _ = 1, 3 do
      local again, ch = r:current()
      assert.equal(c, again)
      assert.is_false(ch)
    end
    assert.equal(calls, p.calls)
    assert.equal(first_reads, reads)
    p.next = creds(2)
    r:invalidate()
    c, changed = r:current()
    assert.equal("AKIDrot2", c.secret_id)
    assert.is_true(changed)
    assert.equal(calls + 1, p.calls)
  end)

  it("settled(): once credentials without expiry were given out on the system clock; never for expiring ones,"
    .. " a clock of one's own, or after invalidate()", function()
    local p = scripted()
    p.next = creds(1)
    local r = credentials.refresher(p)
    assert.is_false(r:settled()) -- nothing given out yet
    r:current()
    assert.is_true(r:settled())
    r:invalidate()
    assert.is_false(r:settled())
    r:current()
    assert.is_true(r:settled())

    local expiring = scripted()
    expiring.next = creds(2, os.time() + 3600)
    local r2 = credentials.refresher(expiring)
    r2:current()
    assert.is_false(r2:settled())

    local own_clock = scripted()
    own_clock.next = creds(3)
    local r3 = refresher(own_clock)
    r3:current()
    assert.is_false(r3:settled())
  end)

  it("a client with settled credentials asks its provider once; another os.time brings back the refresher's"
    .. " clock reads, and their failures", function()
    local ecdn = require "ecdn"
    local proc = require "support.proc"
    local real = os.time
    local reads, broken = 0, false
    local function counting(...) -- the refresher keeps it: the os.time of when the client was made
      reads = reads + 1
      if broken then error("clock broke") end
      return real(...)
    end
    os.time = counting -- luacheck: ignore 122
    finally(function() os.time = real end) -- luacheck: ignore 122
    local p = scripted()
    p.next = creds(1)
    local c = assert(ecdn.client { credentials = p, endpoint = "http://127.0.0.1:" .. proc.closed_port(), rate = 0 })
    finally(function() c:close() end)
    for i = 1, 3 do c:purge { "https://www.example.com/settled-" .. i } end -- (refused: nothing listens)
    assert.equal(1, p.calls)
    os.time = real -- luacheck: ignore 122
    local before = reads
    c:purge { "https://www.example.com/after" }
    assert.equal(1, reads - before) -- the refresher reads its own clock again
    assert.equal(1, p.calls)
    broken = true
    assert.has_error(function() c:purge { "https://www.example.com/broken" } end)
  end)

  it("a clock of one's own is read on every call, and its failure surfaces there", function()
    local p = scripted()
    p.next = creds(1)
    local reads, broken = 0, false
    local r = credentials.refresher(p, function()
      reads = reads + 1
      if broken then error("clock broke") end
      return T0
    end)
    assert(r:current())
    assert(r:current())
    assert.equal(2, reads)
    broken = true
    assert.has_error(function() r:current() end)
  end)

  it("the default clock is os.time", function()
    local p = scripted()
    p.next = creds(1, os.time() + 3600)
    local r = credentials.refresher(p)
    assert(r:current())
    assert.is_true(math.abs(p.seen[1] - os.time()) <= 1)
  end)

  it("raises on a non-provider or a non-function clock", function()
    assert.has_error(function() credentials.refresher({}) end)
    assert.has_error(function() credentials.refresher(scripted(), 5) end)
    assert.has_error(function() credentials.refresher(scripted(), nil, { backoff = -1 }) end)
  end)
end)

describe("rotation end to end", function()
  it("expiry is judged on the clock the client signs with: local time corrected by the service's", function()
    local ecdn = require "ecdn"
    local sim = require "support.sim"
    local A, B = "AKIDgenA00000000000000000000000000001", "AKIDgenB00000000000000000000000000002"
    local s = sim.start { args = { "--rate", "0", "--fake-clock", tostring(T0),
                                   "--secret", A .. ":keyA", "--secret", B .. ":keyB" }, log = true }
    finally(function() s:stop() end)
    -- Generation A expires at T0+1200 (the service's time), then B.
    local p = { calls = 0 }
    function p:get()
      self.calls = self.calls + 1
      if self.calls == 1 then return { secret_id = A, secret_key = "keyA", expires_at = T0 + 1200, source = "s" } end
      return { secret_id = B, secret_key = "keyB", expires_at = T0 + 7200, source = "s" }
    end
    -- The local clock is an hour slow: the first answer teaches the offset.
    local c = assert(ecdn.client { credentials = p, endpoint = s.url, rate = 0,
                                   clock = function() return s:now() - 3600 end })
    finally(function() c:close() end)
    assert(c:purge { "https://www.example.com/1" })
    assert.equal(3600, c:info().clock_offset)
    s:advance(2000) -- the service's T0+2000: A expired 800 s ago, local time says 2,600 s to go
    assert(c:purge { "https://www.example.com/2" })
    local entries = s:log_entries()
    assert.equal(2, #entries)
    assert.equal(A, entries[1].secret_id)
    assert.equal(B, entries[2].secret_id)
    assert.equal(2, p.calls)
  end)

  local m
  setup(function() m = meta.start() end)
  teardown(function() m:stop() end)

  it("cvm_role credentials rotate on the metadata service's schedule; a failed refresh backs off", function()
    m:set { role = "ecdn-role", generation = 1, expired_time = T0 + 21600, mode = "ok" }
    local r, at = refresher(credentials.cvm_role { endpoint = m.url })
    local c, changed = r:current()
    assert.equal(meta.creds(1), c.secret_id)
    assert.is_true(changed)
    -- The service rotates 30 minutes before expiry; we ask 5 minutes before.
    m:set { generation = 2, expired_time = T0 + 43200 }
    at(T0 + 21600 - 301)
    assert.equal(meta.creds(1), r:current().secret_id)
    assert.equal(1, m:count("ecdn-role"))
    -- The service fails at the moment we refresh: old credentials, back-off.
    m:set { mode = "error500" }
    at(T0 + 21600 - 300)
    c, changed = r:current()
    assert.equal(meta.creds(1), c.secret_id)
    assert.is_false(changed)
    assert.equal(500, r.last_error.status)
    local asked = m:count(meta.ROLES_PATH)
    at(T0 + 21600 - 291)
    r:current()
    assert.equal(asked, m:count(meta.ROLES_PATH)) -- not asked during the back-off
    m:set { mode = "ok" }
    at(T0 + 21600 - 290)
    c, changed = r:current()
    assert.is_true(changed)
    local id, key, token = meta.creds(2)
    assert.same({ secret_id = id, secret_key = key, token = token, expires_at = T0 + 43200,
                  source = "cvm_role ecdn-role" }, c)
  end)

  it("a client purging through the simulator across rotations never fails", function()
    local ecdn = require "ecdn"
    local sim = require "support.sim"
    local args = { "--rate", "0" }
    for g = 1, 3 do
      local id, key, token = meta.creds(g)
      for _, a in ipairs { "--secret", id .. ":" .. key, "--token", id .. ":" .. token } do args[#args + 1] = a end
    end
    local s = sim.start { args = args, log = true }
    finally(function() s:stop() end)
    m:set { role = "ecdn-role", generation = 1, expired_time = T0 + 3600, mode = "ok" }
    local r, at = refresher(credentials.cvm_role { endpoint = m.url })
    local c = assert(r:current())
    local client = assert(ecdn.client { secret_id = c.secret_id, secret_key = c.secret_key, token = c.token,
                                        endpoint = s.url })
    finally(function() client:close() end)
    local used = {}
    -- Two hours in 5-minute steps. The service rotates 10 minutes before
    -- expiry (gen 2 at T0+3000, gen 3 at T0+6600); the refresh at T0+3300
    -- fails (gen 1 kept: valid until T0+3600, where it is asked again).
    for step = 0, 24 do
      local t = T0 + step * 300
      if t >= T0 + 6600 then
        m:set { generation = 3, expired_time = T0 + 10800 }
      elseif t >= T0 + 3000 then
        m:set { generation = 2, expired_time = T0 + 7200 }
      end
      m:set { mode = (t == T0 + 3300) and "error500" or "ok" }
      at(t)
      local now_creds, changed = assert(r:current())
      if changed then assert(client:set_credentials(now_creds)) end
      local _, err = client:purge { "https://www.example.com/step-" .. step }
      assert.is_nil(err, err and tostring(err))
      used[#used + 1] = now_creds.secret_id:sub(9, 9)
    end
    -- gen 1 at steps 0-11, gen 2 from T0+3600 (12-22), gen 3 from T0+6900,
    -- half of gen 2's lifetime being more than 5 minutes (23-24).
    assert.equal("111111111111" .. "22222222222" .. "33", table.concat(used))
    assert.equal("cvm_role ecdn-role", client:info().credential_source)
    local ids = {}
    for _, e in ipairs(s:log_entries()) do ids[#ids + 1] = e.secret_id:sub(9, 9) end
    assert.equal(table.concat(used), table.concat(ids))
  end)
end)
