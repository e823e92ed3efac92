--- A sliding-window rate limiter: at most `rate` grants in ANY window of
-- `window` seconds (the service does not document its window, so a client
-- must be safe under every one). Exact, not approximate: the store keeps the
-- times of the last `rate` grants, and a new grant waits until the oldest of
-- them is `window` seconds old.
--
--   local limiter = require "ecdn.limiter"
--   local lim = limiter.new{ rate = 20 }            -- per process (memory store)
--   local wait = lim:take()    -- 0: granted now (recorded); > 0: seconds until one may be
--   lim:penalize(2)            -- the service said RequestLimitExceeded: nothing for 2 s
--
-- Pluggable stores: `limiter.memory()` (this process) here, a lua_shared_dict
-- store for all nginx workers (resty.ecdn), and later a Redis one for many
-- machines. A store implements, atomically:
--   store:take(now, rate, window, clock) -> 0 (granted and recorded) | seconds to wait
--                                 (clock: the limiter's, for a store that may
--                                 wait, for a lock say, to read the time again)
--   store:block(until_time)       -> no grant before until_time
-- Times are seconds (floats) from the limiter's clock.
local services = require "ecdn.services"

local M = {}

--- The in-process store: a ring of the last `rate` grant times.
function M.memory()
  local ring, head, blocked = {}, 0, -math.huge
  local store = {}
  -- store:peek(now, rate, window) -> what take would answer, recording nothing.
  function store.peek(_, now, rate, window)
    if now < blocked then return blocked - now end
    -- ring[head + 1] is the oldest of the last `rate` grants (once full).
    local oldest = ring[head % rate + 1]
    -- (window - age, not oldest + window - now: that can round to 0 at an
    -- age an ulp short of the window, and the grant would come early)
    if oldest and now - oldest < window then return window - (now - oldest) end
    return 0
  end
  function store.take(self, now, rate, window)
    local wait = store.peek(self, now, rate, window)
    if wait > 0 then return wait end
    head = head % rate + 1
    ring[head] = now
    return 0
  end
  function store.block(_, until_time)
    if until_time > blocked then blocked = until_time end
  end
  return store
end

local Limiter = {}
Limiter.__index = Limiter

local function monotonic_clock()
  local ok, socket = pcall(require, "socket")
  if ok and socket.gettime then return socket.gettime end
  return os.time
end

--- limiter.new{rate, window, store, clock} -> limiter. `rate` requests per
-- `window` seconds (defaults: the service's 20 per 1 s); `store` defaults to
-- memory(); `clock` returns seconds (default socket.gettime).
function M.new(opts)
  opts = opts or {}
  local rate = opts.rate or services.RATE_PER_SECOND
  local window = opts.window or 1.0
  if type(rate) ~= "number" or rate < 1 or rate ~= math.floor(rate) then
    error("ecdn.limiter: rate must be a whole number >= 1", 2)
  end
  if type(window) ~= "number" or window ~= window or window <= 0 then
    error("ecdn.limiter: window must be > 0 seconds", 2)
  end
  return setmetatable({ rate = rate, window = window, store = opts.store or M.memory(),
                        clock = opts.clock or monotonic_clock() }, Limiter)
end

--- lim:take() -> 0 when a request may go now (the grant is recorded), else
-- the seconds to wait before asking again (nothing recorded).
function Limiter:take()
  return self.store:take(self.clock(), self.rate, self.window, self.clock)
end

--- lim:penalize(seconds): the service refused for rate (other clients share
-- the account): no grant for `seconds` from now.
function Limiter:penalize(seconds)
  self.store:block(self.clock() + seconds)
end

--- A limiter that always grants (a client with rate = 0).
M.NONE = { take = function() return 0 end, penalize = function() end, acquire = function() end }

--- limiter.stacked(outer, rate, window, clock) -> `outer`'s grants, and at
-- most `rate` per `window` of its own on top (a purge_all job's own rate
-- inside its client's). A refusal from the service penalizes `outer`.
-- A take() either records in both or in neither: its own is only looked at
-- until `outer` has granted (its own store is memory, never blocked, and
-- time only moves on, so its grant then is certain).
function M.stacked(outer, rate, window, clock)
  local own = M.new { rate = rate, window = window, clock = clock }
  return { take = function()
             local w = own.store:peek(own.clock(), own.rate, own.window)
             if w > 0 then return w end
             w = outer:take()
             if w > 0 then return w end
             return own:take()
           end,
           penalize = function(_, secs) outer:penalize(secs) end }
end

--- lim:acquire(sleep) -> waits with `sleep(seconds)` until granted.
function Limiter:acquire(sleep)
  while true do
    local wait = self:take()
    if wait <= 0 then return end
    sleep(wait)
  end
end

return M
