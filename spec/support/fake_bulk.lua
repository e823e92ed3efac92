-- Test helper: ecdn.bulk.purge_all against a scripted service, for answers
-- and orders of events the simulator cannot be made to give on purpose.
--
--   local fake = require "support.fake_bulk"
--   local ok, rep, err, log = fake.run(urls, opts, function(action, params, n)
--     return fake.answer { TaskId = "t1" }     -- or: return nil, fake.DROPPED
--   end)
--
-- respond(action, params, n) answers request n (params decoded from its body);
-- an answer with `offset` set teaches the client that clock offset (as a Date
-- header would). Every request started is answered at the next wait, so
-- requests started together (concurrency) are in flight together. A third
-- value `hold`, a function(pending) -> true once the answer may come, keeps
-- it in flight until then (pending: the requests in flight, {action, params}).
local cjson = require "cjson.safe"
local core = require "ecdn.core"
local limiter = require "ecdn.limiter"
local times = require "ecdn.times"
local merged = require("support.tables").merged

local M = {}

function M.run(urls, opts, respond, st_extra)
  local bulk = require "ecdn.bulk"
  local pending, next_id, log = {}, 0, {}
  local c = {}
  function c._start(_, action, body)
    next_id = next_id + 1
    local params = cjson.decode(body)
    log[#log + 1] = { action = action, params = params }
    local raw, failure, hold = respond(action, params, #log)
    pending[#pending + 1] = { id = next_id, raw = raw, failure = failure, hold = hold, action = action,
                              params = params, since = core.now() }
    return next_id
  end
  function c._wait(_, timeout)
    local out, still = {}, {}
    for _, p in ipairs(pending) do
      -- (held at most 5 s: a script that never lets go fails its test instead of hanging)
      if not p.hold or p.hold(pending) or core.now() - p.since > 5 then out[#out + 1] = p else still[#still + 1] = p end
    end
    pending = still
    if #out == 0 then core.sleep(timeout) end
    return out
  end
  function c.call() error("not scripted") end
  local st = { limiter = limiter.NONE, rate = 0, window = 1.05, service = "ecdn", clock_offset = 0,
               now = core.now, sleep = core.sleep }
  st.observe = function(raw)
    if raw and raw.offset then st.clock_offset = raw.offset return true end
    return false
  end
  st.correct = function() return false end
  st.refresh = function() return true end
  st.timestamp = function() return os.time() end
  for k, v in pairs(st_extra or {}) do st[k] = v end
  -- (lookups believe "none" 0.6 s after a send here, not 3 s: every script answers at once)
  opts = merged({ lookup_settle = 0.6 }, opts or {})
  local ok, rep, err = pcall(bulk.purge_all, c, st, urls, opts)
  return ok, rep, err, log, st
end

--- answer(response [, offset]) -> a 200 whose body is {"Response": response}.
function M.answer(response, offset)
  response.RequestId = response.RequestId or "req"
  return { status = 200, headers = {}, body = cjson.encode { Response = response }, attempts = 1, offset = offset }
end

--- api_error(code, message) -> a 200 carrying an API error.
function M.api_error(code, message)
  return M.answer { Error = { Code = code, Message = message or code } }
end

--- logs(entries) -> a DescribePurgeTasks answer; entries: {TaskId, Url[, CreateTime = unix seconds]}.
function M.logs(entries, offset)
  local out = {}
  for i, e in ipairs(entries) do
    out[i] = { TaskId = e.TaskId, Url = e.Url, Status = "done", PurgeType = "url", FlushType = "flush",
               CreateTime = e.CreateTime and times.beijing(e.CreateTime) }
  end
  return M.answer({ PurgeLogs = setmetatable(out, cjson.array_mt), TotalCount = #out }, offset)
end

--- The answer lost after the request went out (applied or not: nobody knows).
M.DROPPED = { kind = "network", detail = "CURLE_GOT_NOTHING", message = "Empty reply from server", sent = true,
              retryable = true, attempts = 1 }

return M
