-- The regression of issue 10: a purge must not block its nginx worker. The
-- purges go through a hold point in this process (between nginx and the
-- simulator) that reads each request and passes it on only when the test
-- says so; one nginx worker. Proven by order, not by the clock:
--  * 20 requests to a plain location, sent while a purge's request is held,
--    are all answered while the purge is still pending (a marker the purge
--    handler sets before and clears after its purge);
--  * five concurrent purges are all held at once (none answered);
--  * the check can fail: a handler that really blocks the worker makes the
--    same 20 requests wait until it is done (they all see the marker cleared).
local nginx = require "support.nginx"
local sim = require "support.sim"
local proc = require "support.proc"
local socket = require "socket"

describe("resty.ecdn does not block the nginx worker", function()
  local s, n, marker_file, hold

  setup(function()
    s = sim.start { args = { "--rate", "0" } }
    marker_file = proc.tmpname()
    hold = assert(socket.bind("127.0.0.1", 0))
    hold:settimeout(30) -- a purge that never arrives fails the test, not hangs it
    local _, hold_port = hold:getsockname()
    n = nginx.start {
      workers = 1,
      helpers = true,
      vars = { hold = hold_port, id = s.secret_id, key = s.secret_key, marker = marker_file },
      -- keepalive_timeout = 0: one connection per purge, each held on its own
      init = [[
        local ecdn = require "resty.ecdn"
        t.client = assert(ecdn.new { endpoint = "http://127.0.0.1:${hold}", secret_id = "${id}",
                                     secret_key = "${key}", rate = 0, keepalive_timeout = 0 })
      ]],
      server = [[
        location = /purge { content_by_lua_block {
          local pending = ngx.shared.results
          pending:incr("pending", 1, 0)
          local res, err = t.client:purge{ ngx.unescape_uri(ngx.var.arg_url) }
          pending:incr("pending", -1)
          t.say(res, err)
        } }
        location = /plain { content_by_lua_block {
          ngx.say((ngx.shared.results:get("pending") or 0) > 0 and "pending" or "idle")
        } }
        location = /block { content_by_lua_block {
          -- what lua-nginx-module forbids: blocking I/O in a handler
          local pending = ngx.shared.results
          pending:incr("pending", 1, 0)
          local f = io.open("${marker}.tmp", "w") f:write("blocking") f:close()
          os.rename("${marker}.tmp", "${marker}") -- the spec never sees it half written
          os.execute("sleep 0.5")
          pending:incr("pending", -1)
          ngx.say("done")
        } }
      ]],
    }
  end)

  teardown(function()
    if n then n:stop() end
    if s then s:stop() end
    if hold then hold:close() end
    if marker_file then os.remove(marker_file) end
  end)

  after_each(function()
    assert.same({}, n:problems())
  end)

  -- Reads one HTTP message (head and Content-Length body) from c: its bytes.
  local function read_message(c)
    local lines, length = {}, 0
    repeat
      local line = assert(c:receive("*l"))
      lines[#lines + 1] = line
      length = tonumber(line:lower():match("^content%-length:%s*(%d+)")) or length
    until line == ""
    return table.concat(lines, "\r\n") .. "\r\n" .. (length > 0 and assert(c:receive(length)) or "")
  end

  -- Waits for nginx's next purge connection and reads its request, answering
  -- nothing yet: the purge is in flight until pass(held).
  local function take()
    local c = assert(hold:accept())
    c:settimeout(30)
    return { conn = c, request = read_message(c) }
  end

  -- Sends a held request on to the simulator and its answer back to nginx.
  local function pass(held)
    local up = assert(socket.connect("127.0.0.1", s.port))
    up:settimeout(30)
    assert(up:send(held.request))
    assert(held.conn:send(read_message(up)))
    up:close()
    held.conn:close()
  end

  -- 20 requests to /plain, all sent before any answer is read.
  local function plain20()
    local conns, answers = {}, {}
    for i = 1, 20 do conns[i] = n:begin("/plain") end
    for i = 1, 20 do
      local status, body = n:finish(conns[i])
      assert.equal(200, status)
      answers[#answers + 1] = body
    end
    return answers
  end

  it("answers 20 plain requests while a purge is pending", function()
    local purge = n:begin("/purge?url=https://www.example.com/blocking/a.jpg")
    local held = take() -- its request is out; no answer until pass
    for i, body in ipairs(plain20()) do
      assert.equal("pending\n", body, "plain request " .. i .. " was answered after the purge")
    end
    pass(held)
    local status, body = n:finish(purge)
    assert.equal(200, status)
    local out = require("cjson").decode(body)
    assert.is_nil(out.err)
    assert.is_string(out.res.task_id)
  end)

  it("runs five concurrent purges at once (all sent, none answered yet)", function()
    local before = s:stats()
    local conns, held = {}, {}
    for i = 1, 5 do conns[i] = n:begin("/purge?url=https://www.example.com/blocking/c" .. i .. ".jpg") end
    for i = 1, 5 do held[i] = take() end -- a worker that waited for each answer would send only one
    for i = 1, 5 do pass(held[i]) end
    for i = 1, 5 do
      local status, body = n:finish(conns[i])
      assert.equal(200, status)
      assert.is_nil(require("cjson").decode(body).err)
    end
    assert.equal(5, (s:stats().codes.Success or 0) - (before.codes.Success or 0))
  end)

  it("the check can fail: a handler that blocks the worker delays every plain request", function()
    os.remove(marker_file)
    local blocker = n:begin("/block")
    assert.equal("blocking", proc.wait_file(marker_file, 10)) -- the worker is inside the blocking call
    for i, body in ipairs(plain20()) do
      assert.equal("idle\n", body, "plain request " .. i .. " was answered during the blocking call")
    end
    assert.equal(200, (n:finish(blocker)))
  end)
end)
