-- The regression of issue 10: a purge must not block its nginx worker. The
-- simulator answers after 500 ms (--delay-ms 500); one nginx worker. Proven
-- by order, not by the clock:
--  * 20 requests to a plain location, sent while the purge is at the
--    simulator, are all answered while the purge is still pending (a marker
--    the purge handler sets before and clears after its purge; and the
--    simulator has not answered it yet);
--  * five concurrent purges are all at the simulator at once (none answered);
--  * the check can fail: a handler that really blocks the worker makes the
--    same 20 requests wait until it is done (they all see the marker cleared).
local nginx = require "support.nginx"
local sim = require "support.sim"
local proc = require "support.proc"
local socket = require "socket"

describe("resty.ecdn does not block the nginx worker", function()
  local s, n, marker_file

  setup(function()
    s = sim.start { args = { "--rate", "0", "--delay-ms", "500" } }
    marker_file = proc.tmpname()
    n = nginx.start {
      workers = 1,
      helpers = true,
      vars = { sim = s.port, id = s.secret_id, key = s.secret_key, marker = marker_file },
      init = [[
        local ecdn = require "resty.ecdn"
        t.client = assert(ecdn.new { endpoint = "http://127.0.0.1:${sim}", secret_id = "${id}",
                                     secret_key = "${key}", rate = 0 })
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
    if marker_file then os.remove(marker_file) end
  end)

  after_each(function()
    assert.same({}, n:problems())
  end)

  local function successes(st) return st.codes.Success or 0 end

  -- Waits until the simulator has received `k` more API requests than in
  -- `before`; returns that stats snapshot.
  local function wait_requests(before, k)
    local deadline = socket.gettime() + 20
    while socket.gettime() < deadline do
      local st = s:stats()
      if st.requests - before.requests >= k then return st end
      socket.sleep(0.005)
    end
    error("the simulator did not receive " .. k .. " requests")
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
    local before = s:stats()
    local purge = n:begin("/purge?url=https://www.example.com/blocking/a.jpg")
    local at_sim = wait_requests(before, 1)
    assert.equal(successes(before), successes(at_sim)) -- still waiting for its answer
    local answers = plain20()
    local after = s:stats()
    for i, body in ipairs(answers) do
      assert.equal("pending\n", body, "plain request " .. i .. " was answered after the purge")
    end
    -- and the simulator had still not answered the purge when all 20 were in
    assert.equal(successes(before), successes(after))
    local status, body = n:finish(purge)
    assert.equal(200, status)
    local out = require("cjson").decode(body)
    assert.is_nil(out.err)
    assert.is_string(out.res.task_id)
  end)

  it("runs five concurrent purges at once (all at the simulator, none answered yet)", function()
    local before = s:stats()
    local conns = {}
    for i = 1, 5 do conns[i] = n:begin("/purge?url=https://www.example.com/blocking/c" .. i .. ".jpg") end
    local st = wait_requests(before, 5)
    assert.equal(successes(before), successes(st))
    for i = 1, 5 do
      local status, body = n:finish(conns[i])
      assert.equal(200, status)
      assert.is_nil(require("cjson").decode(body).err)
    end
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
