-- Simulator HTTP behaviour and process life: keep-alive, 256 concurrent
-- connections, slow clients, 100-continue, chunked bodies, the purge log's
-- exactness, /__stats, SIGTERM/SIGINT and stdin-EOF stops, command line.
local sim = require "support.sim"
local cjson = require "cjson.safe"

local function exec_status(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 and 0 or math.floor(a / 256) end -- Lua 5.1 / LuaJIT
  return c
end

local function run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local SIM = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/?.so;;' lua5.4 bin/ecdn-sim"

describe("simulator HTTP", function()
  local s
  before_each(function() s = sim.start { args = { "--rate", "0", "--seed", "21" }, log = true } end)
  after_each(function() s:stop() end)

  it("serves many requests over one keep-alive connection", function()
    local c = assert(sim.connect(s.port))
    for i = 1, 20 do
      local status, raw, decoded = c:request("PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/k" .. i } })
      assert.equal(200, status, raw)
      assert.is_string(decoded.Response.TaskId)
    end
    -- Pipelined: three requests in one write, three answers in order.
    local batch = {}
    for i = 1, 3 do
      batch[i] = sim.build_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/p" .. i } })
    end
    c:send(table.concat(batch))
    for _ = 1, 3 do assert.equal(200, (c:receive())) end
    c:close()
    local st = s:stats()
    assert.equal(1, st.connections)
    assert.equal(23, st.requests)
    assert.equal(23, st.codes.Success)
    assert.equal(23, st.http["200"])
    local urls = {}
    for _, e in ipairs(s:log_entries()) do urls[#urls + 1] = e.urls[1] end
    assert.same({ "http://a.com/p1", "http://a.com/p2", "http://a.com/p3" }, { urls[21], urls[22], urls[23] })
  end)

  it("holds 256 concurrent connections and answers all of them", function()
    local conns = {}
    finally(function() for _, c in ipairs(conns) do c:close() end end)
    for i = 1, 256 do conns[i] = assert(sim.connect(s.port)) end
    for i, c in ipairs(conns) do
      assert(c:send((sim.build_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/c" .. i } }))))
    end
    for i, c in ipairs(conns) do
      local status, raw = c:receive()
      assert.equal(200, status, "connection " .. i)
      assert.truthy(raw:find('"TaskId"', 1, true))
    end
    local st = s:stats()
    assert.equal(256, st.connections)
    assert.is_true(st.max_active >= 256)
    assert.equal(256, #s:log_entries())
  end)

  it("keeps answering others while one client sends half a request", function()
    local slow = assert(sim.connect(s.port))
    finally(function() slow:close() end)
    local req = sim.build_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/slow" } })
    slow:send(req:sub(1, #req - 10))
    local status = sim.raw_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/fast" } })
    assert.equal(200, status)
    slow:send(req:sub(#req - 9))
    assert.equal(200, (slow:receive()))
  end)

  it("answers Expect: 100-continue and reads chunked bodies", function()
    local body = cjson.encode { Urls = { "http://a.com/continue" } }
    local req = sim.build_request(s.port, "PurgeUrlsCache", body)
    local head = req:sub(1, #req - #body)
    local c = assert(sim.connect(s.port))
    finally(function() c:close() end)
    c:send(head:gsub("\r\n\r\n$", "\r\nExpect: 100-continue\r\n\r\n"))
    assert.equal("HTTP/1.1 100 Continue", c.sock:receive("*l"))
    assert.equal("", c.sock:receive("*l"))
    c:send(body)
    local status, raw = c:receive()
    assert.equal(200, status)
    assert.truthy(raw:find('"TaskId"', 1, true))

    body = cjson.encode { Urls = { "http://a.com/chunked" } }
    req = sim.build_request(s.port, "PurgeUrlsCache", body)
    head = req:sub(1, #req - #body):gsub("Content%-Length: %d+\r\n", "Transfer-Encoding: chunked\r\n")
    c:send(head .. string.format("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 10, body:sub(1, 10), #body - 10,
                                 body:sub(11)))
    status, raw = c:receive()
    assert.equal(200, status)
    assert.truthy(raw:find('"TaskId"', 1, true), raw)
  end)

  it("answers 400 to garbage, 404 off /, 413 RequestSizeLimitExceeded over 10 MB, and closes HTTP/1.0", function()
    assert.equal(400, (sim.http(s.port, "HELLO\r\n\r\n")))
    assert.equal(404, (sim.http(s.port, "POST /v2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")))
    local status, raw, headers = sim.http(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n")
    assert.equal(413, status)
    assert.equal("close", headers.connection)
    assert.equal("RequestSizeLimitExceeded", cjson.decode(raw).Response.Error.Code)
    local c = assert(sim.connect(s.port))
    local req = sim.build_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/h10" } })
    c:send((req:gsub("^POST / HTTP/1.1", "POST / HTTP/1.0")))
    assert.equal(200, (c:receive()))
    assert.equal("closed", select(2, c.sock:receive(1)))
    c:close()
  end)

  it("logs every accepted URL byte-exact, once per purge, before answering", function()
    local urls = {
      "https://a.com/caf\195\169/\228\184\173\230\150\135/\240\159\152\128.png",
      'http://a.com/q"uo"te\'s',
      "http://a.com/back\\slash\\\\",
      "http://a.com/100%25/%/%zz?x=%E4%B8%AD&y=a b",
      "http://a.com/ctl-free/\226\128\168",
    }
    local c = assert(sim.connect(s.port))
    finally(function() c:close() end)
    local tasks = {}
    for round = 1, 2 do
      for i, u in ipairs(urls) do
        local _, raw, decoded = c:request("PurgeUrlsCache", cjson.encode { Urls = { u } })
        assert.is_string(decoded.Response.TaskId, raw)
        tasks[#tasks + 1] = { decoded.Response.TaskId, decoded.Response.RequestId, u }
        local last = s:log_entries()
        assert.equal((round - 1) * #urls + i, #last) -- already on disk when the answer came
      end
    end
    -- Python-style \u escapes in the body decode to the same bytes.
    local _, raw = c:request("PurgeUrlsCache",
                             '{"Urls": ["https://a.com/caf\\u00e9/\\u4e2d\\u6587/\\ud83d\\ude00.png"]}')
    assert.truthy(raw:find('"TaskId"', 1, true), raw)
    local entries = s:log_entries()
    assert.equal(2 * #urls + 1, #entries)
    for i, t in ipairs(tasks) do
      local e = entries[i]
      assert.same({ task_id = t[1], request_id = t[2], secret_id = s.secret_id, service = "ecdn", urls = { t[3] },
                    at = e.at }, e)
      assert.is_number(e.at)
    end
    assert.equal(urls[1], entries[#entries].urls[1])
    -- Valid UTF-8 is written raw, not \u-escaped, and each line is one JSON object.
    assert.truthy(s:log_text():find("caf\195\169", 1, true))
  end)

  it("answers GET /__stats without counting it as an API connection", function()
    assert.equal(200, (sim.raw_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/s" } })))
    assert.equal(200, (sim.raw_request(s.port, "PurgeUrlsCache", "{}")))
    s:stats() -- a second stats connection
    local st = s:stats()
    assert.equal(2, st.connections)
    assert.equal(2, st.stats_connections)
    assert.equal(2, st.requests)
    assert.equal(1, st.codes.Success)
    assert.equal(1, st.codes.MissingParameter)
    assert.equal(1, st.purged_urls)
  end)
end)

describe("simulator Date header", function()
  -- Every kind of answer, on a simulator whose clock is told: status and headers of each.
  local function answers(s)
    local out = {}
    local function add(name, status, headers) out[#out + 1] = { name, status, headers } end
    local function api(name, status, _, _, headers) add(name, status, headers) end -- raw_request, v1_request
    local function http(name, status, _, headers) add(name, status, headers) end   -- sim.http
    api("purge", sim.raw_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = { "http://a.com/d" } },
                                 { timestamp = math.floor(s:now()) }))
    api("SignatureExpire", sim.raw_request(s.port, "PurgeUrlsCache", "{}", { timestamp = 1 }))
    api("V1", sim.v1_request(s.port, "DescribePurgeQuota", {}, { timestamp = math.floor(s:now()) }))
    http("400", sim.http(s.port, "HELLO\r\n\r\n"))
    http("404", sim.http(s.port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    http("413", sim.http(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n"))
    http("stats", sim.http(s.port, "GET /__stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    http("clock", sim.http(s.port, "POST /__clock HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                   .. "Connection: close\r\n\r\n{}"))
    return out
  end

  it("dates every answer (RFC 7231 IMF-fixdate) by the simulator's clock, fake or real", function()
    local s = sim.start { args = { "--rate", "0", "--fake-clock", "784111777.75" } } -- RFC 7231's own example
    finally(function() s:stop() end)
    local got = answers(s)
    assert.equal(8, #got)
    for _, a in ipairs(got) do
      assert.is_number(a[2], a[1])
      assert.equal("Sun, 06 Nov 1994 08:49:37 GMT", a[3].date, a[1])
    end
    -- the answer a client corrects its clock from
    local _, _, decoded, headers = sim.raw_request(s.port, "PurgeUrlsCache", "{}", { timestamp = 1 })
    assert.equal("AuthFailure.SignatureExpire", decoded.Response.Error.Code)
    assert.equal(784111777, sim.parse_http_date(headers.date))
    for t, want in pairs { [0] = "Thu, 01 Jan 1970 00:00:00 GMT", [951782400] = "Tue, 29 Feb 2000 00:00:00 GMT",
                           [1700000000.5] = "Tue, 14 Nov 2023 22:13:20 GMT",
                           [4102444799] = "Thu, 31 Dec 2099 23:59:59 GMT" } do
      s:set_clock(t)
      local date = select(4, sim.raw_request(s.port, "DescribePurgeQuota", "{}", { timestamp = math.floor(t) })).date
      assert.equal(want, date)
      assert.equal(math.floor(t), sim.parse_http_date(date))
    end
  end)

  it("dates fault answers too (HTTP 500/502/503, InternalError, garbage)", function()
    for _, fault in ipairs { "--fail-rate", "--garbage-rate" } do
      local s = sim.start { args = { "--rate", "0", fault, "1", "--seed", "3", "--fake-clock", "1700000000" } }
      finally(function() s:stop() end)
      for _ = 1, 6 do
        local status, _, _, headers = sim.raw_request(s.port, "PurgeUrlsCache", "{}", { timestamp = 1700000000 })
        assert.is_number(status)
        assert.equal("Tue, 14 Nov 2023 22:13:20 GMT", headers.date, fault)
      end
    end
  end)

  it("without --fake-clock, follows the real clock", function()
    local s = sim.start { args = { "--rate", "0" } }
    finally(function() s:stop() end)
    local before = os.time()
    local _, _, _, headers = sim.raw_request(s.port, "DescribePurgeQuota", "{}")
    local t = sim.parse_http_date(headers.date)
    -- a wide margin: this proves the source of the time, not the machine's speed
    assert.is_true(t >= before - 60 and t <= os.time() + 60, headers.date)
  end)
end)

describe("simulator process", function()
  it("stops cleanly on SIGTERM and on SIGINT, freeing its port", function()
    for _, sig in ipairs { "TERM", "INT" } do
      local s = sim.start { args = { "--rate", "0" } }
      finally(function() s:stop() end)
      local c = assert(sim.connect(s.port)) -- an open keep-alive connection must not keep it alive
      os.execute("kill -" .. sig .. " " .. s.pid)
      local err = s:stop()
      c:close()
      assert.truthy(err:find("stopped (SIG" .. sig .. ")", 1, true), err)
      assert.is_false(sim.alive(s.pid))
      assert.is_nil(sim.connect(s.port))
    end
  end)

  it("exits by itself with --watch-stdin when its stdin closes (the helper went away)", function()
    -- stdin is a pipe from a short sleep; `timeout` turns a hang into a failure.
    local out = run("timeout -s KILL 10 sh -c \"sleep 0.3 | " .. SIM .. " --watch-stdin\" 2>&1; echo status=$?")
    assert.truthy(out:find("listening on http://127.0.0.1:", 1, true), out)
    assert.truthy(out:find("stopped (stdin closed)", 1, true), out)
    assert.truthy(out:find("status=0", 1, true), out)
  end)

  it("documents its options and default credentials in --help and rejects bad options", function()
    local help = run(SIM .. " --help")
    assert.truthy(help:find(sim.DEFAULT_SECRET_ID, 1, true))
    assert.truthy(help:find(sim.DEFAULT_SECRET_KEY, 1, true))
    for _, opt in ipairs { "--port", "--secret", "--token", "--migrated", "--domains", "--rate", "--rate-window",
                           "--batch", "--quota", "--path-batch", "--path-quota", "--push-batch", "--push-quota",
                           "--url-max", "--log", "--seed", "--fail-rate", "--drop-rate", "--garbage-rate",
                           "--delay-ms", "--task-ms", "--task-fail-rate", "--fake-clock", "--watch-stdin" } do
      assert.truthy(help:find(opt .. " ", 1, true), opt)
    end
    assert.equal(0, exec_status(SIM .. " --help >/dev/null"))
    assert.equal(2, exec_status(SIM .. " --rate fast 2>/dev/null"))
    assert.equal(2, exec_status(SIM .. " --fail-rate 2 2>/dev/null"))
    assert.equal(2, exec_status(SIM .. " --token AKIDX:tok 2>/dev/null"))
    assert.equal(2, exec_status(SIM .. " --bogus 2>/dev/null"))
    assert.equal(2, exec_status(SIM .. " --rate-window rolling 2>/dev/null"))
    assert.equal(2, exec_status(SIM .. " --migrated AKIDNOSUCHSECRET 2>/dev/null"))
    assert.equal(2, exec_status(SIM .. " --task-fail-rate 1.5 2>/dev/null"))
  end)

  it("exits with status 1 and a message when its port is taken", function()
    local s = sim.start {}
    finally(function() s:stop() end)
    local out = run(SIM .. " --port " .. s.port .. " 2>&1; echo status=$?")
    assert.truthy(out:find("cannot listen on 127.0.0.1:" .. s.port, 1, true), out)
    assert.truthy(out:find("status=1", 1, true), out)
  end)

  it("helper stop() is safe to call twice", function()
    local s = sim.start {}
    s:stop()
    s:stop()
    assert.is_false(sim.alive(s.pid))
  end)
end)
