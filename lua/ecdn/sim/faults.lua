-- Seeded fault plan: every API request draws the same six numbers from its
-- own stream, so the n-th request sees the same faults for the same --seed
-- whatever the earlier answers were.
local random = require "ecdn.sim.random"

local M = {}
M.__index = M

local FAIL_KINDS = { 500, 502, 503, "InternalError" }

local GARBAGE = {
  "<html><head><title>200 OK</title></head><body>upstream says hello</body></html>",
  '{"Response":{"RequestId":"',
  "OK",
}

-- opts: fail_rate, drop_rate, garbage_rate (0..1), delay_ms, seed.
function M.new(opts)
  return setmetatable({
    rng = random.new(opts.seed),
    fail_rate = opts.fail_rate or 0, drop_rate = opts.drop_rate or 0,
    garbage_rate = opts.garbage_rate or 0, delay_ms = opts.delay_ms or 0,
  }, M)
end

-- Returns the plan for the next request: {delay_ms, fail = 500|502|503|
-- "InternalError"|nil, drop = "before"|"after"|nil, garbage = body|nil}.
-- A dropped request is dropped; else a failed one fails; else garbage.
function M:next()
  local r = self.rng
  local u_fail, u_kind, u_drop, u_when, u_garbage, u_body = r:float(), r:float(), r:float(), r:float(),
                                                             r:float(), r:float()
  local plan = { delay_ms = self.delay_ms }
  if u_drop < self.drop_rate then
    plan.drop = u_when < 0.5 and "before" or "after"
  elseif u_fail < self.fail_rate then
    plan.fail = FAIL_KINDS[math.floor(u_kind * #FAIL_KINDS) + 1]
  elseif u_garbage < self.garbage_rate then
    plan.garbage = GARBAGE[math.floor(u_body * #GARBAGE) + 1]
  end
  return plan
end

return M
