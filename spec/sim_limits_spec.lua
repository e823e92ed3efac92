-- Simulator resource limits: running out of file descriptors never stops it
-- accepting, and bodies over 10 MB are refused while they arrive, with the
-- simulator's memory bounded whatever the number of such connections.
local sim = require "support.sim"
local socket = require "socket"

local BODY = '{"Urls":["http://www.example.com/a.jpg"]}'
local LIMIT = 10 * 1024 * 1024

-- The simulator's resident set in kB (VmRSS).
local function rss_kb(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status", "r"))
  local status = f:read("*a")
  f:close()
  return tonumber(assert(status:match("VmRSS:%s*(%d+)")))
end

describe("simulator file-descriptor exhaustion", function()
  it("keeps accepting after running out of file descriptors (ulimit -n 64, 100 idle connections)", function()
    local s = sim.start { max_fds = 64, args = { "--rate", "0" } }
    finally(function() s:stop() end)
    assert.equal(200, (sim.raw_request(s.port, "PurgeUrlsCache", BODY)))
    local cons = {}
    for i = 1, 100 do cons[i] = assert(sim.connect(s.port)) end
    -- wait until the simulator has hit the limit (it cannot accept them all)
    local function stderr_text()
      local f = io.open(s.err_path, "r")
      local text = f and f:read("*a") or ""
      if f then f:close() end
      return text
    end
    local deadline = socket.gettime() + 10
    while not stderr_text():find("Too many open files", 1, true) and socket.gettime() < deadline do
      socket.sleep(0.02)
    end
    for _, c in ipairs(cons) do c:close() end
    assert.is_true(sim.alive(s.pid))
    -- answered again once descriptors are free (the accept loop backs off, never dies)
    local status, raw, decoded
    deadline = socket.gettime() + 10
    repeat
      status, raw, decoded = sim.raw_request(s.port, "PurgeUrlsCache", BODY)
    until status or socket.gettime() > deadline
    assert.equal(200, status, raw)
    assert.is_string(decoded.Response.TaskId)
    local stats = s:stats()
    assert.is_true(stats.accept_errors > 0, "the simulator never ran out of descriptors: the spec proves nothing")
    assert.matches("accept: Too many open files", s:stop())
  end)
end)

describe("simulator oversized bodies", function()
  -- Opens n connections that each send a request with a body of LIMIT + 1
  -- bytes (chunked: in 64 KiB chunks), all at once, interleaved without
  -- blocking; samples the simulator's RSS meanwhile. Returns per-connection
  -- outcomes ("413" or "closed") and the highest RSS seen (kB).
  local function flood(s, n, chunked)
    local piece = ("x"):rep(64 * 1024)
    local conns = {}
    for i = 1, n do
      local c = assert(sim.connect(s.port))
      local head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   .. "X-TC-Action: PurgeUrlsCache\r\nX-TC-Version: 2019-10-12\r\n"
                   .. (chunked and "Transfer-Encoding: chunked\r\n" or ("Content-Length: " .. (LIMIT + 1) .. "\r\n"))
                   .. "\r\n"
      c.sock:settimeout(0)
      conns[i] = { c = c, pending = head, left = LIMIT + 1, done = false }
    end
    local function next_bytes(st)
      if st.left == 0 then return nil end
      local len = math.min(#piece, st.left)
      st.left = st.left - len
      local data = len == #piece and piece or piece:sub(1, len)
      if chunked then
        data = string.format("%x\r\n", len) .. data .. "\r\n" .. (st.left == 0 and "0\r\n\r\n" or "")
      end
      return data
    end
    local peak = 0
    local deadline = socket.gettime() + 60
    local active = n
    local rounds = 0
    while active > 0 and socket.gettime() < deadline do
      local progressed = false
      for _, st in ipairs(conns) do
        if not st.done then
          if st.pending == "" then st.pending = next_bytes(st) or "" end
          if st.pending == "" then
            st.done = true
            active = active - 1
          else
            local sent, err, last = st.c.sock:send(st.pending)
            local k = sent or last or 0
            if k > 0 then progressed = true end
            st.pending = st.pending:sub(k + 1)
            if not sent and err ~= "timeout" then -- refused: the simulator closed it
              st.done = true
              active = active - 1
            end
          end
        end
      end
      rounds = rounds + 1
      if rounds % 8 == 0 then peak = math.max(peak, rss_kb(s.pid)) end
      if not progressed then socket.sleep(0.002) end
    end
    assert.equal(0, active, "senders still blocked after 60 s")
    peak = math.max(peak, rss_kb(s.pid))
    local outcomes = {}
    for i, st in ipairs(conns) do
      st.c.sock:settimeout(10)
      local status = st.c:receive()
      outcomes[i] = status and tostring(status) or "closed"
      st.c:close()
    end
    return outcomes, peak
  end

  for _, variant in ipairs { "Content-Length", "chunked" } do
    it("refuses 40 concurrent " .. variant .. " bodies of 10 MB + 1 with 413, RSS under 100 MB", function()
      local s = sim.start { args = { "--rate", "0" } }
      finally(function() s:stop() end)
      local before = rss_kb(s.pid)
      local outcomes, peak = flood(s, 40, variant == "chunked")
      for i, o in ipairs(outcomes) do
        assert.is_truthy(o == "413" or o == "closed", "connection " .. i .. " got " .. o)
      end
      local stats = s:stats()
      assert.equal(40, stats.http["413"]) -- every connection was answered 413 before it was closed
      assert.equal(40, stats.codes.RequestSizeLimitExceeded)
      assert.is_nil(stats.http["200"])
      assert.is_true(peak < 100 * 1024, ("simulator RSS reached %d kB (started at %d kB)"):format(peak, before))
      -- and it still serves
      assert.equal(200, (sim.raw_request(s.port, "PurgeUrlsCache", BODY)))
    end)
  end

  it("accepts a chunked body of exactly 10 MB (the limit is not off by one) and refuses one byte more", function()
    local s = sim.start { args = { "--rate", "0" } }
    finally(function() s:stop() end)
    -- a valid JSON body padded with spaces to exactly LIMIT bytes
    local body = BODY .. (" "):rep(LIMIT - #BODY)
    local req = sim.build_request(s.port, "PurgeUrlsCache", body, { connection = "close" })
    local head = req:sub(1, #req - #body):gsub("Content%-Length: %d+\r\n", "Transfer-Encoding: chunked\r\n")
    local c = assert(sim.connect(s.port, 30))
    local half = math.floor(LIMIT / 2)
    assert(c:send(head .. string.format("%x\r\n", half) .. body:sub(1, half) .. "\r\n"
                  .. string.format("%x\r\n", #body - half) .. body:sub(half + 1) .. "\r\n0\r\n\r\n"))
    local status, raw = c:receive()
    c:close()
    assert.equal(200, status)
    assert.truthy(raw:find('"TaskId"', 1, true), raw)
    -- LIMIT + 1 declared in the chunk headers: refused at the header, before the chunk's bytes
    c = assert(sim.connect(s.port))
    assert(c:send(head .. string.format("%x\r\n", half) .. ("x"):rep(half) .. "\r\n"
                  .. string.format("%x\r\n", LIMIT + 1 - half)))
    status = c:receive()
    c:close()
    assert.equal(413, status)
  end)
end)
