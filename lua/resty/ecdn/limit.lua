--- resty.ecdn.limit: the rate limiter of resty.ecdn, built on ecdn.limiter
-- (the exact sliding window: at most `rate` grants in ANY `window` seconds)
-- with two stores here:
--
--   limit.shdict(dict, key)  a lua_shared_dict: every worker of this nginx
--                            that uses the same dict and key shares one window
--   limit.worker(key)        this worker only (no limit_dict given)
--
-- and a third to add later, for many machines sharing one account: a Redis
-- store with the same two methods, each ONE server-side script (EVAL), so
-- that it is atomic without a lock:
--   take:  ZREMRANGEBYSCORE k -inf (now - window); if ZCARD k < rate and
--          GET k:block < now then ZADD k now <unique member>; PEXPIRE k;
--          return 0; else return max(oldest + window, block) - now
--   block: SET k:block until PX ... (keeping the later time)
-- with `now` from the Redis server's TIME, so the machines' clocks do not
-- matter, over lua-resty-redis (a cosocket, so only in the same phases).
-- limit.new below takes any store object, so it plugs in without changes.
--
-- A store implements, atomically (see ecdn.limiter):
--   store:take(now, rate, window, clock) -> 0 (granted and recorded) | seconds to wait
--   store:block(until_time)       -> no grant before until_time
local limiter = require "ecdn.limiter"

local M = {}

-- How often this worker found the lock taken (for tests: proof of contention).
M.lock_waits = 0

local ngx = ngx
local floor = math.floor

-- The lock: shdict:add is atomic across workers (it fails with "exists" while
-- another worker holds it). The critical section is a handful of shdict
-- calls that never yield, so the lock is held for microseconds; the expiry
-- only matters if a worker dies inside it. Waiters spin a little, then let
-- the event loop run (ngx.sleep) between tries.
local LOCK_TTL = 0.5
local SPINS = 200

-- Each lock is taken with a value of its own, so that a holder whose lock
-- expired (it was descheduled for LOCK_TTL) never unlocks someone else's.
local lock_serial = 0

local function lock(dict, key)
  lock_serial = lock_serial + 1
  local mine = ngx.worker.pid() .. ":" .. lock_serial
  local tries = 0
  while true do
    local ok, err = dict:add(key, mine, LOCK_TTL)
    if ok then return mine, tries > 0 end
    if err ~= "exists" then return nil, err end
    M.lock_waits = M.lock_waits + 1
    tries = tries + 1
    if tries > SPINS then ngx.sleep(0.001) end
  end
end

local function unlock(dict, key, mine)
  if dict:get(key) == mine then dict:delete(key) end
end

--- The lua_shared_dict store. The last `rate` grant times are a ring of keys
-- `key .. ":" .. i` (i = 1..rate) with the ring's head at `key .. ":h"`; a
-- block (the service said RequestLimitExceeded) at `key .. ":b"`. Entries
-- expire a little after they stop mattering, so an idle key costs nothing.
-- take()'s `clock` (the limiter's) is read again when the lock made it wait.
function M.shdict(dict, key)
  local lock_key, head_key, block_key = key .. ":lock", key .. ":h", key .. ":b"
  local store = {}

  function store.take(_, now, rate, window, clock)
    local mine, waited = lock(dict, lock_key)
    if not mine then
      -- no room in the dict for even the lock: say so, wait a window
      ngx.log(ngx.WARN, "resty.ecdn: rate limit dict: ", waited) -- (the error, then)
      return window
    end
    if waited and clock then
      -- `now` was read before the wait: a grant recorded at it would look
      -- older than it is, and the next one could come within a window
      local t = clock()
      if t > now then now = t end
    end
    local wait = 0
    local blocked = dict:get(block_key)
    if blocked and now < blocked then
      wait = blocked - now
    else
      local head = dict:get(head_key) or 0
      local slot = head % rate + 1
      local oldest = dict:get(key .. ":" .. slot)
      if oldest and oldest > now then oldest = now end -- the clock stepped back: wait one window at most
      if oldest and now - oldest < window then
        wait = window - (now - oldest) -- (> 0: oldest + window - now can round to 0)
      else
        local ttl = window * 2 + 1
        local ok, serr = dict:set(key .. ":" .. slot, now, ttl)
        if ok then ok, serr = dict:set(head_key, slot, ttl) end
        if not ok then
          ngx.log(ngx.WARN, "resty.ecdn: rate limit dict: ", serr)
          wait = window
        end
      end
    end
    unlock(dict, lock_key, mine)
    return wait
  end

  function store.block(_, until_time)
    local mine = lock(dict, lock_key)
    local old = dict:get(block_key)
    if not old or until_time > old then
      ngx.update_time()
      local ttl = until_time - ngx.now() + 1
      dict:set(block_key, until_time, ttl > 0.001 and ttl or 0.001)
    end
    if mine then unlock(dict, lock_key, mine) end
  end

  return store
end

local function clock()
  ngx.update_time()
  return ngx.now()
end

-- One in-process store per key and rate, for all clients of this worker.
local worker_stores = {}

--- The per-worker store: ecdn.limiter's memory ring, shared by every client
-- of this worker with the same key.
function M.worker(key)
  local s = worker_stores[key]
  if not s then
    s = limiter.memory()
    worker_stores[key] = s
  end
  return s
end

--- limit.new{rate, window, dict, key, store} -> an ecdn.limiter whose clock
-- is nginx's (ngx.now after ngx.update_time). `store` wins over `dict`
-- (a lua_shared_dict object); without both, the per-worker store.
function M.new(opts)
  local rate, window = opts.rate, opts.window
  local key = opts.key .. "|" .. rate .. "/" .. window
  local store = opts.store or (opts.dict and M.shdict(opts.dict, key)) or M.worker(key)
  return limiter.new { rate = rate, window = window, store = store, clock = clock }
end

--- sleep(seconds) for lim:acquire: ngx.sleep in milliseconds, never 0 (which
-- would only yield and spin).
function M.sleep(seconds)
  ngx.sleep(math.max(0.001, floor(seconds * 1000 + 0.5) / 1000))
end

return M
