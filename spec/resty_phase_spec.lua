-- nginx phases: where cosockets are not allowed (init, init_worker, set,
-- header_filter, body_filter, log) client:purge and client:call answer
-- nil, err (ClientError.PhaseError, pointing at purge_async), never an
-- exception from nginx's internals, and send nothing; purge_async works from
-- those phases (except init). The blocking ecdn.client refuses to be made in
-- a request or timer phase, naming resty.ecdn. Without `env` lines in
-- nginx.conf the credential error says which lines to add.
local nginx = require "support.nginx"
local sim = require "support.sim"

local function url(name) return "https://www.example.com/phase/" .. name .. ".jpg" end

describe("resty.ecdn in nginx phases", function()
  local s, n

  setup(function()
    s = sim.start { args = { "--rate", "0" }, log = true }
    n = nginx.start {
      workers = 1,
      helpers = true,
      -- the credentials are in nginx's environment, but nginx.conf has no
      -- `env` lines: nginx hides them from Lua
      env = { TENCENTCLOUD_SECRET_ID = s.secret_id, TENCENTCLOUD_SECRET_KEY = s.secret_key },
      vars = { sim = s.port, id = s.secret_id, key = s.secret_key },
      init = [[
        local ecdn = require "resty.ecdn"
        function t.opts()
          return { endpoint = "http://127.0.0.1:${sim}", secret_id = "${id}", secret_key = "${key}" }
        end
        t.client = assert(ecdn.new(t.opts()))
        t.put("init", t.client:purge{ "https://www.example.com/phase/init.jpg" })
        t.put("init_async", t.client:purge_async{ "https://www.example.com/phase/init_async.jpg" })
        -- the blocking client may be made here (before the workers exist)
        local ok, c = pcall(require("ecdn").client, t.opts())
        t.put("blocking_init", ok and "made" or nil, not ok and c or nil)
        t.blocking = ok and c or nil -- kept: a handler must not be able to use it either
      ]],
      http = [[
        init_worker_by_lua_block {
          t.put("init_worker", t.client:purge{ "https://www.example.com/phase/init_worker.jpg" })
          t.put("init_worker_call", t.client:call("DescribePurgeQuota", {}))
          local ok, err = t.client:purge_async({ "https://www.example.com/phase/init_worker_async.jpg" },
            function(res, e) t.put("init_worker_async", res, e) end)
          if not ok then t.put("init_worker_async", nil, err) end
          ngx.timer.at(0, function()
            local ok2, e = pcall(require("ecdn").client, t.opts())
            t.put("blocking_timer", ok2 and "made" or nil, not ok2 and e or nil)
          end)
        }
      ]],
      server = [[
        location = /log {
          content_by_lua_block { ngx.say("ok") }
          log_by_lua_block {
            t.put("log", t.client:purge{ "https://www.example.com/phase/log.jpg" })
            t.put("log_call", t.client:call("DescribePurgeQuota", {}))
            t.put("log_paths", t.client:purge_paths({ "https://www.example.com/phase/dir/" },
                                                     { flush_type = "flush" }))
          }
        }
        location = /header_filter {
          content_by_lua_block { ngx.say("ok") }
          header_filter_by_lua_block {
            t.put("header_filter", t.client:purge{ "https://www.example.com/phase/header_filter.jpg" })
          }
        }
        location = /body_filter {
          content_by_lua_block { ngx.say("ok") }
          body_filter_by_lua_block {
            if ngx.arg[2] then
              t.put("body_filter", t.client:purge{ "https://www.example.com/phase/body_filter.jpg" })
            end
          }
        }
        location = /set {
          set_by_lua_block $out { return t.encode(t.client:purge{ "https://www.example.com/phase/set.jpg" }) }
          content_by_lua_block { ngx.say(ngx.var.out) }
        }
        location = /blocking {
          content_by_lua_block {
            local ok, e = pcall(require("ecdn").client, t.opts())
            t.say(ok and "made" or nil, not ok and e or nil)
          }
        }
        location = /blocking_used {
          content_by_lua_block {
            local ok, e = pcall(t.blocking.purge, t.blocking, { "https://www.example.com/phase/blocked.jpg" })
            t.say(ok and "sent" or nil, not ok and e or nil)
          }
        }
        location = /blocking_access {
          access_by_lua_block {
            local ok, e = pcall(require("ecdn").client, t.opts())
            ngx.ctx.out = t.encode(ok and "made" or nil, not ok and e or nil)
          }
          content_by_lua_block { ngx.say(ngx.ctx.out) }
        }
        location = /envcred {
          content_by_lua_block { t.say(require("resty.ecdn").new { endpoint = "http://127.0.0.1:${sim}" }) }
        }
      ]],
    }
  end)

  teardown(function()
    if n then n:stop() end
    if s then s:stop() end
  end)

  after_each(function()
    assert.same({}, n:problems())
  end)

  local function phase_error(out, phase, fn)
    assert.is_table(out, "no result for " .. phase)
    assert.is_nil(out.res)
    local err = out.err
    assert.equal("ClientError.PhaseError", err.code)
    assert.equal("client", err.kind)
    assert.is_false(err.sent)
    assert.is_false(err.retryable)
    assert.truthy(err.message:find("client:" .. (fn or "purge") .. " cannot run in nginx's " .. phase .. " phase",
                                   1, true), err.message)
  end

  local function never_sent(name)
    for _, e in ipairs(s:log_entries()) do
      for _, u in ipairs(e.urls or e.paths or {}) do
        assert.are_not.equal(url(name), u)
      end
    end
  end

  it("init: nil, err (and purge_async cannot start a timer there)", function()
    local out = n:result("init")
    phase_error(out, "init")
    assert.truthy(out.err.message:find("request handler or a timer", 1, true))
    local async = n:result("init_async")
    phase_error(async, "init", "purge_async")
    never_sent("init")
    never_sent("init_async")
  end)

  it("init_worker: purge and call are nil, err pointing at purge_async; purge_async purges", function()
    local out = n:result("init_worker")
    phase_error(out, "init_worker")
    assert.truthy(out.err.message:find("purge_async", 1, true))
    phase_error(n:result("init_worker_call"), "init_worker", "call")
    never_sent("init_worker")
    local async = assert(n:result("init_worker_async"))
    assert.is_nil(async.err)
    assert.is_string(async.res.task_id)
    local found = 0
    for _, e in ipairs(s:log_entries()) do
      if e.urls and e.urls[1] == url("init_worker_async") then found = found + 1 end
    end
    assert.equal(1, found)
  end)

  it("log: purge, call and purge_paths are nil, err pointing at purge_async", function()
    n:get("/log")
    local out = n:result("log")
    phase_error(out, "log")
    assert.truthy(out.err.message:find("purge_async(urls, done)", 1, true))
    phase_error(n:result("log_call"), "log", "call")
    phase_error(n:result("log_paths"), "log", "purge_paths")
    never_sent("log")
  end)

  it("header_filter and body_filter: nil, err", function()
    assert.equal(200, (n:get("/header_filter")))
    phase_error(n:result("header_filter"), "header_filter")
    assert.equal(200, (n:get("/body_filter")))
    phase_error(n:result("body_filter"), "body_filter")
    never_sent("header_filter")
    never_sent("body_filter")
  end)

  it("set_by_lua: nil, err", function()
    local out, status = n:json("/set")
    assert.equal(200, status)
    phase_error(out, "set")
    never_sent("set")
  end)

  it("the blocking ecdn.client refuses request and timer phases, naming resty.ecdn", function()
    for _, path in ipairs { "/blocking", "/blocking_access" } do
      local out = n:json(path)
      assert.is_nil(out.res)
      assert.truthy(out.err.string:find("resty.ecdn", 1, true), out.err.string)
      assert.truthy(out.err.string:find("blocks the nginx worker", 1, true), out.err.string)
    end
    local timer = assert(n:result("blocking_timer"))
    assert.truthy(timer.err.string:find("phase 'timer'", 1, true), timer.err.string)
    assert.truthy(timer.err.string:find("resty.ecdn", 1, true))
    -- in init, before the workers exist, nothing is blocked
    assert.equal("made", assert(n:result("blocking_init")).res)
    -- but the client made there refuses to send from a handler
    local used = n:json("/blocking_used")
    assert.is_nil(used.res)
    assert.truthy(used.err.string:find("blocks the nginx worker (phase 'content')", 1, true), used.err.string)
  end)

  it("credentials from the environment without `env` lines: the error names them", function()
    local out = n:json("/envcred")
    assert.equal("ClientError.CredentialError", out.err.code)
    assert.truthy(out.err.message:find("env TENCENTCLOUD_SECRET_ID;", 1, true), out.err.message)
    assert.truthy(out.err.message:find("env TENCENTCLOUD_SECRET_KEY;", 1, true))
    assert.falsy(out.err.message:find(s.secret_key, 1, true))
  end)
end)
