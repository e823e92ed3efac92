-- ecdn.limiter: the sliding window, with an injected clock (no timing luck).
local limiter = require "ecdn.limiter"

local function fake_clock(t)
  local c = { t = t or 1000 }
  function c.now() return c.t end
  return c
end

-- The largest number of grants inside any half-open window [t, t + w).
local function max_in_window(times, w)
  local best, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= w do j = j + 1 end
    if i - j + 1 > best then best = i - j + 1 end
  end
  return best
end

describe("ecdn.limiter", function()
  it("grants at most `rate` in any window, at the earliest moment it may", function()
    for _, rate in ipairs{ 1, 3, 20 } do
      local c = fake_clock()
      local lim = limiter.new { rate = rate, clock = c.now }
      local granted = {}
      math.randomseed(rate)
      for _ = 1, 2000 do
        c.t = c.t + math.random() * 3 / rate  -- callers arrive at random, on average faster than the rate
        local wait = lim:take()
        if wait == 0 then
          granted[#granted + 1] = c.t
        else
          -- The wait is exact: just before it the limiter refuses, at it it grants.
          assert.is_true(wait > 0)
          local later = c.t + wait
          c.t = later - 1e-6
          assert.is_true(lim:take() > 0)
          c.t = later
          -- (at `later` itself, or an ulp or two after: c.t + wait rounds)
          local again = lim:take()
          while again > 0 do
            assert.is_true(again < 1e-9, "waited " .. again .. " more")
            c.t = c.t + math.max(again, 1e-12)
            again = lim:take()
          end
          granted[#granted + 1] = c.t
        end
      end
      assert.equal(rate, max_in_window(granted, 1.0))
    end
  end)

  it("never grants an ulp before the window has passed (oldest + window - now would round to 0)", function()
    local c = fake_clock(1023.1320795384851)
    local lim = limiter.new { rate = 1, clock = c.now }
    assert.equal(0, lim:take())
    c.t = 1024.132079538485 -- 0.99999999999988631 s later
    assert.is_true(c.t - 1023.1320795384851 < 1.0)
    assert.is_true(lim:take() > 0)
  end)

  it("a burst gets exactly `rate` grants, then waits for the oldest to age out", function()
    local c = fake_clock(50)
    local lim = limiter.new { rate = 20, clock = c.now }
    for _ = 1, 20 do assert.equal(0, lim:take()) end
    assert.equal(1.0, lim:take())
    c.t = 50.999
    assert.is_true(lim:take() > 0)
    c.t = 51
    assert.equal(0, lim:take())
  end)

  it("penalize blocks every grant until its time has passed", function()
    local c = fake_clock(10)
    local lim = limiter.new { rate = 5, clock = c.now }
    lim:penalize(2)
    assert.equal(2, lim:take())
    c.t = 11.5
    assert.equal(0.5, lim:take())
    c.t = 12
    assert.equal(0, lim:take())
  end)

  it("acquire sleeps with the given function until granted", function()
    local c = fake_clock(0)
    local lim = limiter.new { rate = 2, clock = c.now }
    local slept = {}
    local function sleep(s) slept[#slept + 1] = s; c.t = c.t + s end
    for _ = 1, 5 do lim:acquire(sleep) end
    assert.same({ 1, 1 }, slept) -- grants at 0, 0, 1, 1, 2
    assert.equal(2, c.t)
  end)

  it("stacked: the inner rate binds first, the outer one still holds, a refusal penalizes the outer", function()
    local c = fake_clock(0)
    local outer = limiter.new { rate = 3, clock = c.now }
    local job = limiter.stacked(outer, 2, 1.0, c.now)
    assert.equal(0, job:take())
    assert.equal(0, job:take())
    assert.equal(1, job:take())     -- the job's own 2 per second
    assert.equal(0, outer:take())   -- the outer has room for one more
    c.t = 1
    assert.equal(0, job:take())     -- the job may again; the outer had 3 at 0, one ages out at 1
    job:penalize(5)
    assert.equal(5, outer:take())
    assert.equal(0, limiter.NONE:take())
  end)

  it("stacked: a take() the outer refuses records nothing in the job's own limiter", function()
    local c = fake_clock(0)
    local outer = limiter.new { rate = 20, clock = c.now }
    local job = limiter.stacked(outer, 1, 1.0, c.now)
    outer:penalize(0.5)             -- another user of the client met RequestLimitExceeded
    assert.equal(0.5, job:take())   -- refused: nothing went out
    c.t = 0.5
    assert.equal(0, job:take())     -- the job's own 1 a second is still unused
    assert.equal(1, job:take())     -- and now it is
  end)

  it("refuses a rate that is not a whole number >= 1", function()
    assert.has_error(function() limiter.new { rate = 0 } end, "ecdn.limiter: rate must be a whole number >= 1")
    assert.has_error(function() limiter.new { rate = 2.5 } end, "ecdn.limiter: rate must be a whole number >= 1")
  end)
end)
