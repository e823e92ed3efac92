-- Secret hygiene: with a canary SecretKey, every path (success, every error
-- kind, tostring of clients and errors, signer results, raised messages, the
-- bytes on the wire, the CLI's output with and without --json) must never
-- show the canary, and the key's memory must be wiped when a client is
-- closed or collected.
local ecdn = require "ecdn"
local core = require "ecdn.core"
local sim = require "support.sim"
local openssl = require "support.openssl"
local proc = require "support.proc"

local CANARY = "CanaryKeyZq8Xw3Tn6Vb1Mm4Hs7Jd2Lr"
local ID, OTHER_ID, TEMP_ID = "AKIDcanary0000000000000000000000000", "AKIDotherpair00000000000000000000000",
  "AKIDtemporary000000000000000000000000"
local URL = "https://www.example.com/a.jpg"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function base64(s)
  local A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return (s:gsub("..?.?", function(t)
    local a, b, c = t:byte(1, 3)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local out = ""
    for i = 3, 0, -1 do out = out .. (function(k) return A:sub(k + 1, k + 1) end)(math.floor(n / 64 ^ i) % 64) end
    return out:sub(1, #t + 1) .. ("="):rep(3 - #t)
  end))
end

-- The canary whole, its second half (a freed but unwiped copy loses its first
-- 16 bytes to the allocator), and the encodings a leak would likely take.
local FORMS = { raw = CANARY, tail = CANARY:sub(17), hex = hex(CANARY), base64 = base64(CANARY):sub(1, 40) }

local function leak_in(s)
  for name, form in pairs(FORMS) do
    if s:find(form, 1, true) then return name end
  end
end

-- Every string reachable from v (keys, values, tostring of tables/userdata).
local function assert_clean(v, where, seen)
  seen = seen or {}
  local t = type(v)
  if t == "string" then
    local form = leak_in(v)
    assert(not form, where .. ": the canary (" .. tostring(form) .. ") appears in: " .. v:sub(1, 300))
  elseif t == "table" then
    if seen[v] then return end
    seen[v] = true
    for k, x in pairs(v) do
      assert_clean(k, where, seen)
      assert_clean(x, where .. "." .. tostring(k), seen)
    end
    assert_clean(tostring(v), where .. " (tostring)", seen)
  elseif t == "userdata" then
    assert_clean(tostring(v), where .. " (tostring)", seen)
  end
end

local function pack(...) return { n = select("#", ...), ... } end

-- Calls f and scans everything it returned or raised.
local function scan(where, f, ...)
  local r = pack(pcall(f, ...))
  for i = 1, r.n do assert_clean(r[i], where) end
  return r
end

-- How many times each needle ({name = bytes}) occurs in the writable memory
-- of process pid (/proc/PID/mem: heap and anonymous mappings).
local function count_in(pid, needles)
  local mf = assert(io.open("/proc/" .. pid .. "/maps"))
  local maps = mf:read("*a")
  mf:close()
  local mem = assert(io.open("/proc/" .. pid .. "/mem", "rb"))
  local longest = 1
  for _, needle in pairs(needles) do longest = math.max(longest, #needle) end
  local n = {}
  for name in pairs(needles) do n[name] = 0 end
  for a, b, perms, rest in maps:gmatch("(%x+)%-(%x+) (%S+)([^\n]*)\n") do
    -- Writable data only; the stack is left out (dead frames keep stray
    -- copies from building strings, which come and go), and so are huge
    -- reservations (ASan's shadow memory, terabytes of zeros): the
    -- child's heaps are a few MB.
    local lo, hi = tonumber(a, 16), tonumber(b, 16)
    if perms:sub(1, 2) == "rw" and not rest:find("[stack", 1, true) and not rest:find("[v", 1, true)
        and hi - lo < 64 * 1048576 then
      local pos, prev = lo, ""
      while pos < hi do
        local len = math.min(1048576, hi - pos)
        local chunk = mem:seek("set", pos) and mem:read(len)
        if not chunk then break end
        local buf = prev .. chunk
        for name, needle in pairs(needles) do
          local i = 1
          while true do
            local at = buf:find(needle, i, true)
            if not at then break end
            -- (a match wholly inside prev was counted with the last chunk)
            if at + #needle - 1 > #prev then n[name] = n[name] + 1 end
            i = at + 1
          end
        end
        prev = buf:sub(-(longest - 1))
        pos = pos + len
      end
    end
  end
  mem:close()
  return n
end

local function stopped(pid)
  local sf = io.open("/proc/" .. pid .. "/stat")
  if not sf then return false end
  local st = sf:read("*a")
  sf:close()
  return st:match("^%d+ %b() (%a)") == "T"
end

-- Runs the Lua source `body` in a child with the environment `env`; the
-- child stops itself at each checkpoint(name) and this process counts the
-- needles in its memory there. Returns {[name] = counts}, "name=..., ..."
local function checkpoints(body, env, needles, summary)
  local script = proc.tmpname() .. ".lua"
  local f = assert(io.open(script, "w"))
  f:write([[
    local function checkpoint(name)
      io.stdout:write(name, "\n")
      io.stdout:flush()
      os.execute("kill -STOP $PPID")
    end
  ]], body, '\nio.stdout:write("done\\n")\n')
  f:close()
  local p = assert(io.popen("echo $$; " .. proc.env .. " " .. env .. " exec " .. proc.lua .. " " .. script))
  local pid = tonumber(p:read("*l"))
  local counts, order = {}, {}
  local ok, err = pcall(function()
    for line in p:lines() do
      if line == "done" then break end
      local deadline = os.time() + 10
      while not stopped(pid) do
        assert(os.time() < deadline, "the child did not stop at " .. line)
      end
      counts[line] = count_in(pid, needles)
      order[#order + 1] = line .. "=" .. summary(counts[line])
      os.execute("kill -CONT " .. pid)
    end
  end)
  if not ok then os.execute("kill -CONT " .. pid .. "; kill -KILL " .. pid .. " 2>/dev/null") end
  p:close()
  os.remove(script)
  assert(ok, err)
  return counts, table.concat(order, ", ")
end

describe("secret hygiene", function()
  local s, faults, closed_port

  setup(function()
    local secrets = { "--rate", "0", "--quota", "100000000",
                      "--secret", ID .. ":" .. CANARY,
                      "--secret", OTHER_ID .. ":OtherKeyOtherKeyOtherKeyOther000",
                      "--secret", TEMP_ID .. ":" .. CANARY, "--token", TEMP_ID .. ":goodtoken" }
    s = sim.start{ args = secrets }
    local function fault(...)
      local a = { ... }
      for _, x in ipairs(secrets) do a[#a + 1] = x end
      return sim.start{ args = a }
    end
    faults = { garbage = fault("--garbage-rate", "1"), fail = fault("--fail-rate", "1"),
               drop = fault("--drop-rate", "1"), slow = fault("--delay-ms", "2000") }
    closed_port = proc.closed_port()
  end)

  teardown(function()
    if s then s:stop() end
    for _, f in pairs(faults or {}) do f:stop() end
  end)

  local function client(extra)
    local o = { secret_id = ID, secret_key = CANARY, endpoint = s.url, timeout = 5 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(ecdn.client(o))
  end

  it("the canary is a working key (the paths below really sign with it)", function()
    local res = assert(client():purge{ URL })
    assert.is_string(res.task_id)
  end)

  it("never appears in results, error tables or tostring, on any path", function()
    local c = client()
    local function expect(where, code, r)
      assert.is_true(r[1], where .. " raised: " .. tostring(r[2]))
      if code then
        assert.is_table(r[3], where)
        assert.equal(code, r[3].code, where)
        assert_clean(tostring(r[3]), where)
      else
        assert.is_not_nil(r[2], where .. ": " .. tostring(r[3]))
      end
    end
    expect("purge success", nil, scan("purge success", c.purge, c, { URL }))
    expect("call success", nil, scan("call success", c.call, c, "DescribePurgeQuota", {}))
    expect("InvalidAction", "InvalidAction", scan("InvalidAction", c.call, c, "NoSuchAction", {}))
    for problem, urls in pairs{ wildcard = { "https://*.example.com/" }, scheme = { "ftp://a.com/" },
                                space = { "https://a.com/ x" }, utf8 = { "https://a.com/\xff" },
                                not_string = { 1 }, empty = {} } do
      local r = scan("local " .. problem, c.purge, c, urls)
      assert.is_true(r[1])
      assert.equal("client", r[3].kind, problem)
    end
    assert_clean(tostring(c), "tostring(open client)")
    assert_clean(c:info(), "client:info()")
    c:close()
    assert_clean(tostring(c), "tostring(closed client)")
    scan("purge on a closed client", c.purge, c, { URL })

    -- A clock that drifts on every call: still expired after the one correction.
    local function drifting()
      local n = 0
      return function() n = n + 1 return os.time() - 3600 * n end
    end
    local cases = {
      { "SignatureFailure", "AuthFailure.SignatureFailure", { secret_id = OTHER_ID } },
      { "SecretIdNotFound", "AuthFailure.SecretIdNotFound", { secret_id = "AKIDnobody00000000000000000000000000" } },
      { "TokenFailure", "AuthFailure.TokenFailure", { secret_id = TEMP_ID, token = "wrongtoken" } },
      { "SignatureExpire", "AuthFailure.SignatureExpire", { clock = drifting() } },
      { "refused", "ClientError.NetworkError", { endpoint = "http://127.0.0.1:" .. closed_port } },
      { "garbage", "ClientError.ParseJsonError", { endpoint = faults.garbage.url } },
      { "dropped", "ClientError.NetworkError", { endpoint = faults.drop.url } },
      { "timeout", "ClientError.NetworkError", { endpoint = faults.slow.url, timeout = 0.2 } },
    }
    for _, case in ipairs(cases) do
      local cc = client(case[3])
      expect(case[1], case[2], scan(case[1], cc.purge, cc, { URL }))
      cc:close()
    end
    local cf = client{ endpoint = faults.fail.url }
    local r = scan("HTTP 5xx", cf.purge, cf, { URL })
    assert.is_table(r[3])
    assert.truthy(r[3].kind == "http" or r[3].code == "InternalError", tostring(r[3]))
    cf:close()
  end)

  it("never appears in credential errors or in raised option errors", function()
    local cases = {
      { secret_id = ID, secret_key = " " .. CANARY },
      { secret_id = ID, secret_key = CANARY .. "\n" },
      { secret_id = ID, secret_key = CANARY .. "\0" },
      { secret_id = ID, secret_key = CANARY .. "\r\nX: y" },
      { secret_key = CANARY },
      { secret_id = ID, secret_key = CANARY, timeout = "soon" },
      { secret_id = ID, secret_key = CANARY, bogus = CANARY },
      { secret_id = CANARY, secret_key = CANARY, endpoint = "ftp://" .. CANARY },
      { secret_id = ID, secret_key = CANARY, proxy = "a\0" .. CANARY },
      { secret_id = ID, secret_key = CANARY, language = CANARY },
    }
    for i, opts in ipairs(cases) do
      local r = scan("ecdn.client case " .. i, ecdn.client, opts)
      assert.is_falsy(r[1] and r[2], "case " .. i .. " made a client")
    end
    -- core.new directly, failing at each field after the key was copied.
    local base = { secret_id = ID, secret_key = CANARY, service = "ecdn", host = "h", version = "v",
                   url = "http://h/" }
    assert.equal("ecdn.client", getmetatable(core.new(base))) -- the base itself is good
    for _, field in ipairs{ "token", "service", "host", "version", "region", "language", "url", "timeout" } do
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      o[field] = field == "timeout" and -1 or "bad\r\n"
      local r = scan("core.new bad " .. field, core.new, o)
      assert.is_false(r[1], field)
    end
  end)

  it("never appears in signer results or signer errors", function()
    local tc3 = { secret_id = ID, secret_key = CANARY, service = "ecdn", host = "ecdn.tencentcloudapi.com",
                  action = "PurgeUrlsCache", version = "2019-10-12", timestamp = 1700000000, payload = "{}" }
    local r = scan("sign_tc3", core.sign_tc3, tc3)
    assert.is_true(r[1])
    local v1 = { secret_id = ID, secret_key = CANARY, host = "cdn.tencentcloudapi.com", action = "PurgeUrlsCache",
                 version = "2018-06-06", timestamp = 1700000000, nonce = 7, params = { ["Urls.0"] = URL } }
    r = scan("sign_v1", core.sign_v1, v1)
    assert.is_true(r[1])
    for _, bad in ipairs{ { "host", "a\nb" }, { "timestamp", -1 }, { "service", "" }, { "content_type", {} } } do
      local t = {}
      for k, v in pairs(tc3) do t[k] = v end
      t[bad[1]] = bad[2]
      r = scan("sign_tc3 bad " .. bad[1], core.sign_tc3, t)
      assert.is_false(r[1])
    end
    for _, bad in ipairs{ { "method", "PUT" }, { "nonce", 0 }, { "params", { Action = "x" } } } do
      local t = {}
      for k, v in pairs(v1) do t[k] = v end
      t[bad[1]] = bad[2]
      r = scan("sign_v1 bad " .. bad[1], core.sign_v1, t)
      assert.is_false(r[1])
    end
  end)

  it("never goes on the wire (a recording server sees the request)", function()
    local script = proc.tmpname() .. ".lua"
    local record = proc.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local socket = require "socket"
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      io.stdout:write(port, "\n")
      io.stdout:flush()
      srv:settimeout(10)
      local c = assert(srv:accept())
      c:settimeout(10)
      local head, n = {}, 0
      repeat
        local line = assert(c:receive("*l"))
        head[#head + 1] = line
        n = tonumber(line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")) or n
      until line == ""
      local body = n > 0 and assert(c:receive(n)) or ""
      local out = assert(io.open(arg[1], "wb"))
      out:write(table.concat(head, "\r\n"), "\r\n", body)
      out:close()
      local answer = '{"Response":{"TaskId":"1700000000-abcdefgh","RequestId":"rec-1"}}'
      c:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
        .. #answer .. "\r\n\r\n" .. answer)
      c:close()
    ]])
    f:close()
    local p = assert(io.popen(proc.lua .. " " .. script .. " " .. record))
    local port = tonumber(p:read("*l"))
    assert.is_number(port, "recorder did not start")
    local c = client{ endpoint = "http://127.0.0.1:" .. port, token = "sessiontoken" }
    local res = c:purge{ URL }
    c:close()
    p:close()
    local rf = assert(io.open(record, "rb"))
    local bytes = rf:read("*a")
    rf:close()
    os.remove(script)
    os.remove(record)
    assert.same({ task_id = "1700000000-abcdefgh", request_id = "rec-1", attempts = 1 }, res)
    -- The recording is the real signed request.
    assert.truthy(bytes:find("Authorization: TC3-HMAC-SHA256 Credential=" .. ID, 1, true), bytes)
    assert.truthy(bytes:find(URL, 1, true), bytes)
    assert_clean(bytes, "request bytes")
  end)

  it("never appears in the CLI's output, with --json or without", function()
    local function cli(args, env)
      local e = "env -u TENCENTCLOUD_SESSION_TOKEN TENCENTCLOUD_SECRET_ID=" .. proc.quote(env.id or ID)
        .. " TENCENTCLOUD_SECRET_KEY=" .. proc.quote(env.key or CANARY)
      -- --retries 0: the failing cases need no retries to show their output
      local cmd = e .. " " .. proc.lua .. " bin/ecdn-purge --retries 0"
      for _, a in ipairs(args) do cmd = cmd .. " " .. proc.quote(a) end
      return proc.run(cmd .. " </dev/null 2>&1")
    end
    local cases = {
      { 0, { "--endpoint", s.url, URL }, {} },
      { 1, { "--endpoint", s.url, URL }, { id = OTHER_ID } },
      { 1, { "--endpoint", s.url, URL }, { id = "AKIDnobody00000000000000000000000000" } },
      { 1, { "--endpoint", "http://127.0.0.1:" .. closed_port, URL }, {} },
      { 1, { "--endpoint", faults.garbage.url, URL }, {} },
      { 1, { "--endpoint", faults.slow.url, "--timeout", "0.2", URL }, {} },
      { 2, { "--endpoint", s.url, "https://*.example.com/" }, {} },
      { 2, { "--endpoint", s.url, URL }, { key = " " .. CANARY } },
      { 2, { "--endpoint", s.url, "--bogus", URL }, {} },
      { 0, { "--help" }, {} },
    }
    for _, case in ipairs(cases) do
      for _, json in ipairs{ false, true } do
        local args = {}
        if json then args[1] = "--json" end
        for _, a in ipairs(case[2]) do args[#args + 1] = a end
        local out, rc = cli(args, case[3])
        local where = "ecdn-purge " .. table.concat(args, " ")
        assert.equal(case[1], rc, where .. ": " .. out)
        assert.is_true(#out > 0, where .. ": no output")
        assert_clean(out, where)
      end
    end
  end)

  -- A child process makes clients with the canary key and stops itself at
  -- checkpoints; this process counts the canary's copies in the child's
  -- writable memory (/proc/PID/mem, heap and anonymous mappings). The Lua
  -- string holding the key is one copy; a live client adds exactly one (its
  -- C copy), and after close() or collection the count must be back down:
  -- the C copy (and any signing scratch) was wiped, not just freed. The count
  -- uses the key's second half, which survives a free without a wipe.
  it("is wiped from memory when a client is closed or collected", function()
    local counts, seen = checkpoints([[
      local ecdn = require "ecdn"
      local id, url = os.getenv("ECDN_CANARY_ID"), os.getenv("ECDN_SIM_URL")
      local key = os.getenv("ECDN_CANARY_KEY") -- the only Lua copy, kept alive
      local function make(k)
        local c = assert(ecdn.client{ secret_id = id, secret_key = k, endpoint = url })
        local res, err = c:purge{ "https://www.example.com/a" }
        return c, res, err
      end
      -- Warm-up with another key (the simulator refuses it; a whole request
      -- all the same): modules, libcurl, OpenSSL all initialised.
      make("WarmUpKeyWarmUpKeyWarmUpKeyWarm0"):close()
      collectgarbage()
      checkpoint("baseline")
      local c = assert(ecdn.client{ secret_id = id, secret_key = key, endpoint = url })
      checkpoint("created")
      assert(c:purge{ "https://www.example.com/a" })
      assert(c:call("DescribePurgeQuota", {}))
      checkpoint("used")
      c:close()
      checkpoint("closed")
      local res
      c, res = make(key)
      assert(res, "purge with the canary key failed")
      checkpoint("created again")
      c = nil
      collectgarbage()
      collectgarbage()
      checkpoint("collected")
    ]], "ECDN_CANARY_KEY=" .. CANARY .. " ECDN_CANARY_ID=" .. ID .. " ECDN_SIM_URL=" .. s.url,
      { key = FORMS.tail }, function(c) return tostring(c.key) end)
    local function n(name) return counts[name] and counts[name].key end
    local b = n("baseline")
    assert.is_number(b, seen)
    assert.is_true(b >= 1, "the scan does not see the key's Lua string: " .. seen)
    -- Positive control: the scan sees the client's own copy.
    assert.equal(b + 1, n("created"), seen)
    assert.equal(b + 1, n("used"), "signing left a copy behind: " .. seen)
    assert.equal(b, n("closed"), "close() left the key in memory: " .. seen)
    assert.equal(b + 1, n("created again"), seen)
    assert.equal(b, n("collected"), "collection left the key in memory: " .. seen)
  end)

  -- The keys derived from the canary (k1, k2 and the signing key k3 of the
  -- TC3 chain) and the signing key's HMAC block (k3 XOR 0x36..) as the cache
  -- keeps it: only the cache may hold them, and only until it is cleared.
  it("leaves no derived key behind: not in the key chain's context, nor for an uncached service, nor after a clear",
    function()
    local TS = 1700000000
    local LONG = "ecdn" .. ("x"):rep(70) -- longer than the cache takes: signed, not cached
    local date = os.date("!%Y-%m-%d", TS)
    local function xor36(k)
      return (k:gsub(".", function(ch)
        local a, b, r, m = ch:byte(), 0x36, 0, 1
        for _ = 1, 8 do
          if a % 2 ~= b % 2 then r = r + m end
          a, b, m = math.floor(a / 2), math.floor(b / 2), m * 2
        end
        return string.char(r)
      end))
    end
    local needles = {}
    for _, service in ipairs { "ecdn", LONG } do
      local tag = service == "ecdn" and "" or "long_"
      local k1 = openssl.hmac("sha256", "TC3" .. CANARY, date)
      local k2 = openssl.hmac("sha256", k1, service)
      local k3 = openssl.hmac("sha256", k2, "tc3_request")
      needles[tag .. "k1"], needles[tag .. "k2"], needles[tag .. "k3"] = k1, k2, k3
      needles[tag .. "ipad"] = xor36(k3)
    end
    local names = {}
    for name in pairs(needles) do names[#names + 1] = name end
    table.sort(names)
    local counts, seen = checkpoints(([[
      local core = require "ecdn.core"
      local key = os.getenv("ECDN_CANARY_KEY")
      local function sign(service)
        return assert(core.sign_tc3{ secret_id = "AKIDx", secret_key = key, service = service,
          host = "h.example.com", version = "2019-10-12", action = "PurgeUrlsCache", payload = "{}",
          timestamp = TS })
      end
      sign("ecdn")
      checkpoint("cached")
      core.sign_cache_clear()
      checkpoint("cleared")
      sign("LONG")
      checkpoint("uncached")
    ]]):gsub("TS", TS):gsub("LONG", LONG), "ECDN_CANARY_KEY=" .. CANARY, needles, function(c)
      local t = {}
      for _, name in ipairs(names) do t[#t + 1] = name .. ":" .. c[name] end
      return "{" .. table.concat(t, " ") .. "}"
    end)
    -- Positive control: the cache entry's HMAC block is seen.
    assert.is_true(counts.cached.ipad >= 1, "the scan does not see the cached key: " .. seen)
    for _, name in ipairs(names) do
      if name ~= "ipad" then assert.equal(0, counts.cached[name], name .. " left behind: " .. seen) end
      assert.equal(0, counts.cleared[name], name .. " left after sign_cache_clear(): " .. seen)
      assert.equal(0, counts.uncached[name], name .. " left behind: " .. seen)
    end
  end)
end)
