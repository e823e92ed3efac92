-- The rate limiter of resty.ecdn in a real nginx with 2 workers: the
-- lua_shared_dict store is exact (synthetic times), atomic under real
-- contention between the two workers, shared by every worker (40 concurrent
-- purges against the simulator at --rate 20: no RequestLimitExceeded, with
-- the limiter's and the simulator's clocks both stopped and moved by the
-- test), and the service's own refusal holds the limiter back.
local nginx = require "support.nginx"
local sim = require "support.sim"

describe("resty.ecdn's rate limiter in nginx (2 workers)", function()
  local s, s2, n
  local ID2, KEY2 = "AKIDRESTYLIMIT2000000000000000000000", "RestyLimitSecondKey0000000000000"

  setup(function()
    s = sim.start { args = { "--rate", "20", "--fake-clock", "now" }, log = true }
    s2 = sim.start { args = { "--rate", "1", "--fake-clock", "now", "--secret", ID2 .. ":" .. KEY2 } }
    n = nginx.start {
      workers = 2,
      reuseport = true, -- the kernel spreads the connections over both workers
      helpers = true,
      vars = { sim = s.port, id = s.secret_id, key = s.secret_key, sim2 = s2.port, id2 = ID2, key2 = KEY2 },
      http = [[
        lua_shared_dict ecdn_limit 1m;
        lua_shared_dict hammer 8m;
        init_worker_by_lua_block {
          -- Both workers take from the same keys at the same moments: for each
          -- of K keys they meet at a barrier, then each asks 5 times (rate 3,
          -- one fixed time). Exactly 3 grants per key, whatever the interleaving.
          local limit = require "resty.ecdn.limit"
          local d = ngx.shared.hammer
          ngx.timer.at(0, function()
            -- First one round of certain contention (not left to the
            -- scheduler): the first worker here holds key0's lock itself
            -- until the other worker's take has found it taken (its dict
            -- counts the refused adds).
            if d:incr("arrive:0", 1, 0) == 1 then
              assert(d:add("key0:lock", "the test", 10))
              d:set("held", true)
              while (d:get("refused_adds") or 0) == 0 do ngx.sleep(0.001) end
              d:delete("key0:lock")
            else
              while not d:get("held") do ngx.sleep(0.001) end
              local counting = setmetatable({
                add = function(_, k, v, ttl)
                  local ok, err = d:add(k, v, ttl)
                  if not ok and err == "exists" then d:incr("refused_adds", 1, 0) end
                  return ok, err
                end,
              }, { __index = function(_, name) return function(_, ...) return d[name](d, ...) end end })
              assert(limit.shdict(counting, "key0"):take(1000, 3, 1) == 0)
            end
            local K, granted = 3000, 0
            for k = 1, K do
              local arrived = d:incr("arrive:" .. k, 1, 0)
              local spins = 0
              while arrived < 2 do
                spins = spins + 1
                if spins > 1000 then ngx.sleep(0.001) end
                arrived = d:get("arrive:" .. k)
              end
              local store = limit.shdict(d, "key" .. k)
              for _ = 1, 5 do
                if store:take(1000, 3, 1) == 0 then granted = granted + 1 end
              end
            end
            d:incr("granted", granted, 0)
            d:incr("lock_waits", limit.lock_waits, 0)
            d:incr("done", 1, 0)
          end)
        }
      ]],
      init = [[
        local ecdn = require "resty.ecdn"
        t.client = assert(ecdn.new { endpoint = "http://127.0.0.1:${sim}", secret_id = "${id}",
                                     secret_key = "${key}", limit_dict = "ecdn_limit", rate = 20 })
        -- The limiter's clock: a time in the shared dict that only /advance
        -- moves (the simulator's is stopped too), so which purge goes in
        -- which window is the test's choice, not the scheduler's. A purge
        -- the limiter refuses is counted, and waits here until the clock
        -- has moved: no retry depends on how long the test takes to move it.
        local lim, hammer = t.client.limiter, ngx.shared.hammer
        lim.clock = function() return hammer:get("now") or 1000 end
        local take = lim.store.take
        lim.store.take = function(st, now, rate, window)
          local wait = take(st, now, rate, window)
          if wait > 0 and not ngx.ctx.refused then
            ngx.ctx.refused = true
            hammer:incr("refused_purges", 1, 0)
            while lim.clock() == now do ngx.sleep(0.01) end
          end
          return wait
        end
      ]],
      server = [[
        location = /purge { content_by_lua_block { t.say(t.client:purge{ ngx.unescape_uri(ngx.var.arg_url) }) } }
        location = /advance { content_by_lua_block {
          ngx.say(ngx.shared.hammer:incr("now", tonumber(ngx.var.arg_by), 1000))
        } }
        location = /refused { content_by_lua_block { ngx.say(ngx.shared.hammer:get("refused_purges") or 0) } }
        location = /hammer { content_by_lua_block {
          local d = ngx.shared.hammer
          ngx.say(require("cjson").encode { done = d:get("done") or 0, granted = d:get("granted") or 0,
                                            lock_waits = d:get("lock_waits") or 0 })
        } }
        location = /exact { content_by_lua_block {
          -- the store's arithmetic, with synthetic times: rate 3 in any 1 s
          local limit = require "resty.ecdn.limit"
          local st = limit.shdict(ngx.shared.ecdn_limit, "exact-" .. ngx.now())
          local out = {}
          for _, now in ipairs { 10.0, 10.1, 10.2, 10.5, 11.0, 11.05, 11.1, 11.15, 11.2, 12.5 } do
            out[#out + 1] = st:take(now, 3, 1)
          end
          st:block(20)
          out[#out + 1] = st:take(19.5, 3, 1)
          out[#out + 1] = st:take(20, 3, 1)
          ngx.say(require("cjson").encode(out))
        } }
        location = /lock_wait { content_by_lua_block {
          -- rate 1: the first grant is taken after waiting 0.3 s for a lock
          -- another worker holds; the next must still be a window after it
          local limit = require "resty.ecdn.limit"
          local d = ngx.shared.ecdn_limit
          local lim = limit.new { rate = 1, window = 1.05, dict = d, key = "lock-wait" }
          assert(d:add("lock-wait|1/1.05:lock", "another worker", 10))
          local granted
          local th = ngx.thread.spawn(function()
            lim:acquire(limit.sleep)
            ngx.update_time()
            granted = ngx.now()
          end)
          ngx.sleep(0.3)
          d:delete("lock-wait|1/1.05:lock")
          ngx.thread.wait(th)
          lim:acquire(limit.sleep)
          ngx.update_time()
          ngx.say(require("cjson").encode { gap = ngx.now() - granted })
        } }
        location = /worker_store { content_by_lua_block {
          local limit = require "resty.ecdn.limit"
          ngx.say(limit.worker("k1") == limit.worker("k1") and limit.worker("k1") ~= limit.worker("k2"))
        } }
        location = /penalty { content_by_lua_block {
          -- the client allows 20/s, but the account is at its limit (this
          -- simulator: 1/s, clock stopped): the service refuses the second
          -- purge, and the limiter then holds every user back
          local ecdn = require "resty.ecdn"
          local c = assert(ecdn.new { endpoint = "http://127.0.0.1:${sim2}", secret_id = "${id2}",
                                      secret_key = "${key2}", limit_dict = "ecdn_limit", rate = 20 })
          local r1 = c:purge{ "https://www.example.com/limit/p1.jpg" }
          local _, err = c:purge{ "https://www.example.com/limit/p2.jpg" }
          t.say({ first = r1 and r1.task_id, wait = c.limiter:take() }, err)
        } }
      ]],
    }
  end)

  teardown(function()
    if n then n:stop() end
    if s then s:stop() end
    if s2 then s2:stop() end
  end)

  after_each(function()
    assert.same({}, n:problems())
  end)

  it("the shared-dict store is exact: rate 3 in any 1 s window, and a block holds", function()
    local out = n:json("/exact")
    local want = { 0, 0, 0, 0.5, 0, 0.05, 0, 0.05, 0, 0, 0.5, 0 }
    assert.equal(#want, #out)
    for i = 1, #want do
      assert.is_true(math.abs(want[i] - out[i]) < 1e-9, "take #" .. i .. ": " .. out[i] .. " ~= " .. want[i])
    end
  end)

  it("a grant taken after waiting for the lock is recorded at its real time (next one a window later)", function()
    local out = n:json("/lock_wait")
    -- (ngx.now has millisecond steps, and the two readings are floats)
    assert.is_true(out.gap >= 1.05 - 0.002, "grants " .. out.gap .. " s apart")
  end)

  it("without limit_dict, the clients of a worker share one store per key", function()
    local _, body = n:get("/worker_store")
    assert.equal("true\n", body)
  end)

  it("is atomic across workers: exactly `rate` grants per key under real contention", function()
    local h
    local deadline = os.time() + 60
    repeat
      h = n:json("/hammer")
    until h.done == 2 or os.time() > deadline
    assert.equal(2, h.done)
    assert.equal(3000 * 3, h.granted)
    -- the workers met at the lock: at least in the forced round (key0)
    assert.is_true(h.lock_waits > 0, "no contention seen")
  end)

  it("a RequestLimitExceeded from the service holds the limiter back", function()
    local out = n:json("/penalty")
    assert.is_string(out.res.first)
    assert.equal("RequestLimitExceeded", out.err.code)
    assert.is_true(out.res.wait > 0, "the limiter granted right after the refusal")
  end)

  it("40 concurrent purges over 2 workers at --rate 20: no RequestLimitExceeded", function()
    local before = s:stats()
    local conns = {}
    for i = 1, 40 do
      conns[i] = n:begin("/purge?url=https://www.example.com/limit/c" .. i .. ".jpg", { timeout = 60 })
    end
    -- Both clocks stand still: one shared limiter lets 20 go and holds 20
    -- back (20 at the simulator, 20 refused), wherever the kernel put them.
    local function refused() return tonumber((select(2, n:get("/refused")))) end
    local sent, held
    local deadline = os.time() + 60
    repeat
      sent, held = s:stats().requests - before.requests, refused()
    until sent + held >= 40 or os.time() > deadline
    assert.equal(20, sent)
    assert.equal(20, held)
    -- More than a window later on both clocks (whole seconds: exact sums): the other 20 go.
    s:advance(2)
    n:get("/advance?by=2")
    local pids, failed = {}, {}
    for i = 1, 40 do
      local status, body = n:finish(conns[i])
      assert.equal(200, status)
      local out = require("cjson").decode(body)
      pids[out.pid] = true
      if out.err then failed[#failed + 1] = out.err.string end
    end
    assert.same({}, failed)
    local npids = 0
    for _ in pairs(pids) do npids = npids + 1 end
    assert.equal(2, npids, "the purges ran in both workers")
    local after = s:stats()
    assert.equal(40, (after.codes.Success or 0) - (before.codes.Success or 0))
    assert.equal((before.codes.RequestLimitExceeded or 0), (after.codes.RequestLimitExceeded or 0))
  end)
end)
