-- resty.ecdn in a real nginx against the simulator: purges from content,
-- access, rewrite and a timer, purge_async, purge_paths, call, keep-alive
-- reuse, local refusals, credentials from nginx's environment, and the
-- error tables of ecdn.client. nginx runs its own LuaJIT whatever
-- interpreter runs busted; error.log has no [error]/[alert] after each test.
local nginx = require "support.nginx"
local sim = require "support.sim"

local URL = "https://www.example.com/resty/a.jpg"

-- A location running `code` (Lua) in content_by_lua_block.
local function content(path, code)
  return "location = " .. path .. " { content_by_lua_block { " .. code .. " } }\n"
end

describe("resty.ecdn purges in nginx", function()
  local s, n

  setup(function()
    s = sim.start { args = { "--rate", "0", "--quota", "1000000" }, log = true }
    n = nginx.start {
      workers = 1,
      helpers = true,
      -- credentials from nginx's environment need these lines
      main = "env TENCENTCLOUD_SECRET_ID; env TENCENTCLOUD_SECRET_KEY;",
      env = { TENCENTCLOUD_SECRET_ID = s.secret_id, TENCENTCLOUD_SECRET_KEY = s.secret_key },
      vars = { sim = s.port, id = s.secret_id, key = s.secret_key },
      http = "lua_shared_dict ecdn_limit 1m;",
      init = [[
        local ecdn = require "resty.ecdn"
        function t.opts(extra)
          local o = { endpoint = "http://127.0.0.1:${sim}", secret_id = "${id}", secret_key = "${key}",
                      limit_dict = "ecdn_limit" }
          for k, v in pairs(extra or {}) do o[k] = v end
          return o
        end
        -- made once in the master (init_by_lua), used by every worker
        t.client = assert(ecdn.new(t.opts()))
        t.fresh = assert(ecdn.new(t.opts { keepalive_timeout = 0 }))
      ]],
      server = table.concat {
        content("/content", [[
          local urls = { ngx.var.arg_url or "https://www.example.com/resty/a.jpg" }
          t.say(t.client:purge(urls))
        ]]),
        "location = /access {\n",
        "  access_by_lua_block { ngx.ctx.out = t.encode(t.client:purge{ ngx.var.arg_url }) }\n",
        "  content_by_lua_block { ngx.say(ngx.ctx.out) }\n",
        "}\n",
        "location = /rewrite {\n",
        "  rewrite_by_lua_block { ngx.ctx.out = t.encode(t.client:purge{ ngx.var.arg_url }) }\n",
        "  content_by_lua_block { ngx.say(ngx.ctx.out) }\n",
        "}\n",
        content("/timer", [[
          local key, url = ngx.var.arg_key, ngx.var.arg_url
          local ok, err = ngx.timer.at(0, function() t.put(key, t.client:purge{ url }) end)
          ngx.say(ok and "scheduled" or err)
        ]]),
        content("/async", [[
          local key = ngx.var.arg_key
          t.say(t.client:purge_async({ ngx.var.arg_url }, function(res, err) t.put(key, res, err) end))
        ]]),
        "location = /async_log {\n",
        "  content_by_lua_block { ngx.say('ok') }\n",
        "  log_by_lua_block {\n",
        "    local key = ngx.var.arg_key\n",
        "    local ok, err = t.client:purge_async({ ngx.var.arg_url }, function(res, e) t.put(key, res, e) end)\n",
        "    if not ok then t.put(key, nil, err) end\n",
        "  }\n",
        "}\n",
        content("/fresh", "t.say(t.fresh:purge{ ngx.var.arg_url })"),
        content("/paths", "t.say(t.client:purge_paths({ 'https://www.example.com/resty/dir/' }, "
                          .. "{ flush_type = 'delete' }))"),
        content("/quota", "t.say(t.client:call('DescribePurgeQuota', {}))"),
        content("/bad", [[t.say(t.client:purge{ "https://www.example.com/ok", "ftp://www.example.com/x" })]]),
        content("/badkey", [[
          local ecdn = require "resty.ecdn"
          local c = assert(ecdn.new(t.opts { secret_key = "WrongKeyWrongKeyWrongKeyWrongKey" }))
          t.say(c:purge{ "https://www.example.com/resty/k.jpg" })
        ]]),
        content("/envcred", [[
          local ecdn = require "resty.ecdn"
          local c, err = ecdn.new { endpoint = "http://127.0.0.1:${sim}" }
          if not c then return t.say(nil, err) end
          local res, perr = c:purge{ ngx.var.arg_url }
          if res then res.source = c:info().credential_source end
          t.say(res, perr)
        ]]),
        content("/refused", [[
          local ecdn = require "resty.ecdn"
          local c = assert(ecdn.new(t.opts { endpoint = "http://127.0.0.1:" .. ngx.var.arg_port }))
          t.say(c:purge{ "https://www.example.com/resty/r.jpg" })
        ]]),
        content("/async_bad", [[
          local before = ngx.timer.pending_count()
          local ok, err = t.client:purge_async({ "https://www.example.com/ok", "https://*.example.com/x" })
          local raised, msg = pcall(t.client.purge_async, t.client, { "https://www.example.com/ok" }, "done")
          t.say({ ok = ok, timers = ngx.timer.pending_count() - before, raised = not raised, msg = msg }, err)
        ]]),
        content("/options", [[
          local ecdn = require "resty.ecdn"
          local out = {}
          for _, o in ipairs {
            { cafile = "/etc/ssl/certs/ca-certificates.crt" }, { proxy = "http://proxy:3128" },
            { limit_dict = "no_such_dict" }, { colour = "blue" }, { rate = 1.5 }, { keepalive_pool = 0 },
            { timeout = 0 }, { endpoint = "https://user@host" }, { region = "ap-guangzhou\r\nX: y" },
          } do
            local ok, e = pcall(ecdn.new, t.opts(o))
            out[#out + 1] = ok and "accepted" or e
          end
          ngx.say(require("cjson").encode(out))
        ]]),
        content("/rotate", [[
          local ecdn = require "resty.ecdn"
          local c = assert(ecdn.new(t.opts()))
          assert(c:set_credentials { secret_id = "${id}", secret_key = "WrongKeyWrongKeyWrongKeyWrongKey" })
          local _, bad = c:purge{ "https://www.example.com/resty/rot1.jpg" }
          assert(c:set_credentials { secret_id = "${id}", secret_key = "${key}" })
          local res, err = c:purge{ "https://www.example.com/resty/rot2.jpg" }
          c:close()
          local raised = not pcall(c.purge, c, { "https://www.example.com/resty/rot3.jpg" })
          t.say({ bad = bad and bad.code, ok = res and res.task_id, source = "set_credentials",
                  closed_raises = raised }, err)
        ]]),
        content("/bulk", [[
          local key, n = ngx.var.arg_key, tonumber(ngx.var.arg_n)
          local ok, err = ngx.timer.at(0, function()
            local urls = {}
            for i = 1, n do urls[i] = "https://www.example.com/resty/bulk/" .. i end
            urls[#urls + 1] = "ftp://www.example.com/not-a-purge" -- refused locally, accounted in errors
            local rep, rerr = t.client:purge_all(urls, { batch = 500, concurrency = 4 })
            if not rep then return t.put(key, nil, rerr) end
            local where, twice = {}, 0
            for _, list in ipairs { rep.tasks, rep.errors } do
              for _, x in ipairs(list) do
                for _, u in ipairs(x.urls) do
                  if where[u] then twice = twice + 1 end
                  where[u] = true
                end
              end
            end
            local accounted = 0
            for _, u in ipairs(urls) do if where[u] then accounted = accounted + 1 end end
            t.put(key, { ok = rep.ok, failed = rep.failed, tasks = #rep.tasks, requests = rep.requests,
                         accounted = accounted, twice = twice })
          end)
          ngx.say(ok and "scheduled" or err)
        ]]),
        content("/bulk_phase", [[
          local ok, msg = pcall(t.client.purge_all, t.client, "x")
          t.say({ raised = not ok, msg = msg })
        ]]),
        -- CDN's Area and UrlEncode, and the refusals of bad ones (as ecdn.client)
        content("/cdn_extras", [[
          local ecdn = require "resty.ecdn"
          local c = assert(ecdn.new(t.opts { service = "cdn" }))
          local res, err = c:purge({ ngx.var.arg_url }, { area = "overseas", url_encode = true })
          local pres, perr = c:purge_paths({ ngx.var.arg_path }, { flush_type = "flush", area = "mainland" })
          local raised = {}
          local e = assert(ecdn.new(t.opts()))
          for _, v in ipairs { { c, { area = "bogus" } }, { c, { url_encode = "yes" } }, { e, { area = "global" } } } do
            local ok, msg = pcall(v[1].purge, v[1], { ngx.var.arg_url }, v[2])
            raised[#raised + 1] = not ok and msg or "accepted"
          end
          t.say({ purge = res, paths = pres, raised = raised }, err or perr)
        ]]),
        -- close() before purge_async's timer runs: done still hears of it
        content("/async_close", [[
          local ecdn = require "resty.ecdn"
          local c = assert(ecdn.new(t.opts()))
          assert(c:purge_async({ ngx.var.arg_url }, function(res, err) t.put("async_close", res, err) end))
          c:close()
          ngx.say("scheduled")
        ]]),
        -- close() from another light thread while a purge and a call sleep in the limiter
        content("/close_waiting", [[
          local ecdn = require "resty.ecdn"
          local c = assert(ecdn.new(t.opts { rate = 1 }))
          local first = assert(c:purge{ ngx.var.arg_url .. "?first" }) -- the window's one grant
          local p = ngx.thread.spawn(function() return c:purge{ ngx.var.arg_url } end)
          local q = ngx.thread.spawn(function() return c:call("DescribePurgeQuota", {}) end)
          ngx.sleep(0.2)
          c:close()
          local _, _, perr = ngx.thread.wait(p)
          local _, _, qerr = ngx.thread.wait(q)
          ngx.say(require("cjson").encode { first = first.task_id, purge = perr, call = qerr })
        ]]),
        content("/info", [[
          local info = t.client:info()
          info.tostring = tostring(t.client)
          ngx.say(require("cjson").encode(info))
        ]]),
      },
    }
  end)

  teardown(function()
    if n then n:stop() end
    if s then s:stop() end
  end)

  after_each(function()
    -- the refused connection is logged by nginx's cosocket layer (lua_socket_log_errors)
    assert.same({}, n:problems { "connect%(%) failed %(111: Connection refused%)" })
  end)

  -- The simulator's log entries for one URL.
  local function logged(url)
    local out = {}
    for _, e in ipairs(s:log_entries()) do
      for _, u in ipairs(e.urls or {}) do
        if u == url then out[#out + 1] = e end
      end
    end
    return out
  end

  local function purged(out, url)
    assert.is_nil(out.err, out.err and out.err.string)
    assert.is_string(out.res.task_id)
    assert.equal(1, out.res.attempts)
    local entries = logged(url)
    assert.equal(1, #entries, url .. " purged once")
    assert.equal(out.res.task_id, entries[1].task_id)
  end

  it("purges from a content handler (client made in init_by_lua)", function()
    purged(n:json("/content?url=" .. URL), URL)
  end)

  it("purges from access_by_lua and rewrite_by_lua", function()
    purged(n:json("/access?url=https://www.example.com/resty/access.jpg"), "https://www.example.com/resty/access.jpg")
    purged(n:json("/rewrite?url=https://www.example.com/resty/rewrite.jpg"),
           "https://www.example.com/resty/rewrite.jpg")
  end)

  it("purges from a timer (ngx.timer.at)", function()
    local body = select(2, n:get("/timer?key=t1&url=https://www.example.com/resty/timer.jpg"))
    assert.equal("scheduled\n", body)
    purged(assert(n:result("t1")), "https://www.example.com/resty/timer.jpg")
  end)

  it("purge_async from a content handler and from the log phase calls done in a timer", function()
    local out = n:json("/async?key=a1&url=https://www.example.com/resty/async.jpg")
    assert.is_true(out.res)
    purged(assert(n:result("a1")), "https://www.example.com/resty/async.jpg")
    n:get("/async_log?key=a2&url=https://www.example.com/resty/async-log.jpg")
    purged(assert(n:result("a2")), "https://www.example.com/resty/async-log.jpg")
  end)

  it("reuses one kept-alive connection; keepalive_timeout = 0 opens one per purge", function()
    n:get("/content?url=https://www.example.com/resty/warm.jpg") -- a pooled connection exists now
    local before = s:stats()
    for i = 1, 5 do
      purged(n:json("/content?url=https://www.example.com/resty/ka" .. i .. ".jpg"),
             "https://www.example.com/resty/ka" .. i .. ".jpg")
    end
    local mid = s:stats()
    assert.equal(5, mid.requests - before.requests)
    assert.equal(0, mid.connections - before.connections)
    -- the first may take the connection kept in the pool (same scheme, host and port), and closes it
    purged(n:json("/fresh?url=https://www.example.com/resty/fresh0.jpg"), "https://www.example.com/resty/fresh0.jpg")
    mid = s:stats()
    for i = 1, 3 do
      purged(n:json("/fresh?url=https://www.example.com/resty/fresh" .. i .. ".jpg"),
             "https://www.example.com/resty/fresh" .. i .. ".jpg")
    end
    assert.equal(3, s:stats().connections - mid.connections)
  end)

  it("purge_paths and call give ecdn.client's result tables", function()
    local out = n:json("/paths")
    assert.is_nil(out.err)
    assert.is_string(out.res.task_id)
    local found
    for _, e in ipairs(s:log_entries()) do
      if e.paths and e.paths[1] == "https://www.example.com/resty/dir/" then found = e end
    end
    assert.equal("delete", assert(found).flush_type)
    out = n:json("/quota")
    assert.is_nil(out.err)
    assert.is_table(out.res.UrlPurge)
    assert.is_string(out.res.RequestId)
    assert.equal(1, out.res.attempts)
  end)

  it("refuses a bad URL locally, as ecdn.client does, and sends nothing", function()
    local before = s:stats().requests
    local out = n:json("/bad")
    assert.equal("ClientError.InvalidParameter", out.err.code)
    assert.equal(2, out.err.index)
    assert.equal("scheme", out.err.problem)
    assert.is_false(out.err.sent)
    assert.equal(before, s:stats().requests)
  end)

  it("an API error is the same error table as ecdn.client's", function()
    local out = n:json("/badkey")
    assert.equal("AuthFailure.SignatureFailure", out.err.code)
    assert.equal("api", out.err.kind)
    assert.is_true(out.err.sent)
    assert.is_false(out.err.retryable)
    assert.is_string(out.err.request_id)
  end)

  it("a refused connection: CURLE_COULDNT_CONNECT, sent = false", function()
    local out = n:json("/refused?port=" .. require("support.proc").closed_port())
    assert.equal("ClientError.NetworkError", out.err.code)
    assert.equal("CURLE_COULDNT_CONNECT", out.err.detail)
    assert.is_false(out.err.sent)
    assert.is_true(out.err.retryable)
  end)

  it("takes credentials from nginx's environment when nginx.conf has the env lines", function()
    local out = n:json("/envcred?url=https://www.example.com/resty/env.jpg")
    purged(out, "https://www.example.com/resty/env.jpg")
    assert.equal("environment", out.res.source)
  end)

  it("purge_async refuses a bad URL at once (no timer) and a done that is not a function", function()
    local out = n:json("/async_bad")
    assert.is_nil(out.res.ok)
    assert.equal(0, out.res.timers)
    assert.equal("InvalidParameter.EcdnPurgeWildcardNotAllowed", out.err.code)
    assert.equal(2, out.err.index)
    assert.is_true(out.res.raised)
    assert.truthy(out.res.msg:find("done must be a function", 1, true))
  end)

  it("purge_all of 10,000 URLs from a timer: every URL accounted for, each purged once", function()
    local body = select(2, n:get("/bulk?key=b1&n=10000"))
    assert.equal("scheduled\n", body)
    local out = assert(n:result("b1", 60))
    assert.is_nil(out.err, out.err and out.err.string)
    assert.same({ ok = 10000, failed = 1, tasks = 20, requests = 20, accounted = 10001, twice = 0 }, out.res)
    local count = {}
    for _, e in ipairs(s:log_entries()) do
      for _, u in ipairs(e.urls or {}) do count[u] = (count[u] or 0) + 1 end
    end
    for i = 1, 10000 do
      local u = "https://www.example.com/resty/bulk/" .. i
      assert(count[u] == 1, u .. " purged " .. tostring(count[u]) .. " times")
    end
    local bad = n:json("/bulk_phase")
    assert.is_true(bad.res.raised)
    assert.truthy(bad.res.msg:find("urls must be a table", 1, true), bad.res.msg)
  end)

  it("refuses bad options with a programming error that says what to do", function()
    local out = n:json("/options")
    local want = { "lua_ssl_trusted_certificate", "not supported", "lua_shared_dict no_such_dict",
                   "unknown option 'colour'", "field 'rate'", "field 'keepalive_pool'", "field 'timeout'",
                   "field 'endpoint'", "region" }
    assert.equal(#want, #out)
    for i, w in ipairs(want) do
      assert.truthy(out[i]:find(w, 1, true), out[i])
      assert.truthy(out[i]:find("resty.ecdn", 1, true) or out[i]:find("ecdn", 1, true), out[i])
    end
  end)

  it("set_credentials rotates keys; a closed client raises", function()
    local out = n:json("/rotate")
    assert.is_nil(out.err)
    assert.equal("AuthFailure.SignatureFailure", out.res.bad)
    assert.is_string(out.res.ok)
    assert.is_true(out.res.closed_raises)
  end)

  it("purge and purge_paths send CDN's Area and UrlEncode, and refuse bad ones as ecdn.client does", function()
    local url, path = "https://www.example.com/resty/area.jpg", "https://www.example.com/resty/area-dir/"
    local out = n:json("/cdn_extras?url=" .. url .. "&path=" .. path)
    assert.is_nil(out.err)
    assert.is_string(out.res.purge.task_id)
    assert.is_string(out.res.paths.task_id)
    local e = logged(url)
    assert.equal(1, #e)
    assert.equal("overseas", e[1].area)
    assert.is_true(e[1].url_encode)
    local found
    for _, entry in ipairs(s:log_entries()) do
      for _, p in ipairs(entry.paths or {}) do if p == path then found = entry end end
    end
    assert.equal("mainland", found.area)
    -- the same refusals, in the same words, as ecdn.client's
    local c = assert(require("ecdn").client { endpoint = "http://127.0.0.1:" .. s.port, service = "cdn",
                                              secret_id = s.secret_id, secret_key = s.secret_key })
    local ce = assert(require("ecdn").client { endpoint = "http://127.0.0.1:" .. s.port,
                                               secret_id = s.secret_id, secret_key = s.secret_key })
    for i, v in ipairs { { c, { area = "bogus" } }, { c, { url_encode = "yes" } }, { ce, { area = "global" } } } do
      local ok, msg = pcall(v[1].purge, v[1], { url }, v[2])
      assert.is_false(ok)
      local want = msg:match(":purge: ([^(]*)") -- (up to the services: ecdn.client's also has "auto")
      assert.truthy(out.res.raised[i]:find("resty.ecdn:purge: " .. want, 1, true), out.res.raised[i])
    end
    c:close()
    ce:close()
  end)

  local CLOSED = { code = "ClientError.Closed", kind = "client", sent = false, retryable = false }
  local function closed_error(err)
    assert.is_table(err)
    for k, v in pairs(CLOSED) do assert.equal(v, err[k], "field " .. k) end
    assert.truthy(err.message:find("closed", 1, true))
  end

  it("purge_async then close(): done gets ClientError.Closed (nothing sent), nothing raises", function()
    local url = "https://www.example.com/resty/async-close.jpg"
    local _, body = n:get("/async_close?url=" .. url)
    assert.equal("scheduled\n", body)
    local out = assert(n:result("async_close"))
    assert.is_nil(out.res)
    closed_error(out.err)
    assert.same({}, logged(url))
  end)

  it("close() while a purge and a call wait in the limiter: ClientError.Closed, nothing sent", function()
    local url = "https://www.example.com/resty/close-waiting.jpg"
    local out = assert(n:json("/close_waiting?url=" .. url))
    assert.is_string(out.first)
    closed_error(out.purge)
    closed_error(out.call)
    assert.same({}, logged(url))
  end)

  it("info and tostring show no secret", function()
    local info = n:json("/info")
    assert.equal("ecdn", info.service)
    assert.equal("http://127.0.0.1:" .. s.port .. "/", info.endpoint)
    assert.equal(20, info.rate)
    assert.equal("ecdn_limit", info.limit_dict)
    assert.equal("options", info.credential_source)
    assert.truthy(info.tostring:find(s.secret_id:sub(1, 8), 1, true))
    assert.falsy(info.tostring:find(s.secret_id, 1, true))
    for _, v in pairs(info) do
      assert.falsy(tostring(v):find(s.secret_key, 1, true))
    end
  end)
end)

describe("resty.ecdn purge_all lookups", function()
  it("never take a task this client was given by purge just before the job (as ecdn.client)", function()
    -- seed 7, drop-rate 0.5: request 1 (purge) is answered, 2 (purge_all's send) is lost before the
    -- service, 3 (the lookup) is answered and lists request 1's task, which is not the job's.
    local s = sim.start { args = { "--rate", "0", "--seed", "7", "--drop-rate", "0.5" }, log = true }
    finally(function() s:stop() end)
    local n = nginx.start {
      helpers = true,
      vars = { sim = s.port, id = s.secret_id, key = s.secret_key },
      server = [[location = /prior { content_by_lua_block {
        local ecdn = require "resty.ecdn"
        local c = assert(ecdn.new { endpoint = "http://127.0.0.1:${sim}", secret_id = "${id}",
                                    secret_key = "${key}", timeout = 5 })
        local url = "https://www.example.com/old/app.js"
        local old, e1 = c:purge { url }
        local rep, e2 = c:purge_all({ url }, { max_backoff = 0.02 })
        t.say({ old = old and old.task_id, got = rep and rep.tasks[1] and rep.tasks[1].task_id,
                ok = rep and rep.ok }, e1 or e2)
      } }]],
    }
    finally(function() n:stop() end)
    local status, body = n:get("/prior")
    assert.equal(200, status, body)
    local out = require("cjson").decode(body).res
    local applied = {}
    for _, e in ipairs(s:log_entries()) do applied[#applied + 1] = e.task_id end
    assert.equal(2, #applied, body) -- the purge, and the job's own (sent again after its lookup)
    assert.equal(applied[1], out.old)
    assert.equal(applied[2], out.got)
    assert.equal(1, out.ok)
  end)
end)
