-- The fast path of stage 4: core.task_answer recognises the common answer of
-- the task actions in C, and ecdn.client decodes it there without building a
-- raw response. It must give exactly what the general decoder (lua-cjson,
-- decode.response and decode.clean) gives, or decline and leave the body to
-- that decoder: checked on hand-picked bodies and on thousands of mutations.
local core = require "ecdn.core"
local decode = require "ecdn.decode"
local ecdn = require "ecdn"
local gc = require "support.gc"
local raw = require "support.raw"

local task_answer = core.task_answer

-- What the general decoder makes of a 200 with this body (nil when it
-- refuses): decode.task without its fast path.
local function general(body)
  local resp = decode.response { status = 200, body = body, attempts = 1 }
  local task_id = resp and decode.clean(resp.TaskId, decode.MAX_ID)
  if not task_id or task_id == "" then return nil end
  return task_id, resp.RequestId
end

local CANONICAL = '{"Response":{"TaskId":"15213-abc","RequestId":"9a5b-c0de"}}'

describe("core.task_answer", function()
  it("recognises the common answer, members in either order, whitespace anywhere between tokens", function()
    for _, body in ipairs {
      CANONICAL,
      '{"Response":{"RequestId":"9a5b-c0de","TaskId":"15213-abc"}}',
      ' \t\r\n{ "Response" :\n{ "TaskId" : "15213-abc" ,\r\n"RequestId":"9a5b-c0de" } }\n',
    } do
      local t, r = task_answer(body)
      assert.equal("15213-abc", t, body)
      assert.equal("9a5b-c0de", r, body)
    end
    local long = ("x"):rep(decode.MAX_ID)
    assert.equal(long, (task_answer('{"Response":{"TaskId":"' .. long .. '","RequestId":"r"}}')))
    -- every printable ASCII byte but the quote and the backslash passes as it is
    local printable = {}
    for b = 0x20, 0x7E do
      if b ~= 0x22 and b ~= 0x5C then printable[#printable + 1] = string.char(b) end
    end
    printable = table.concat(printable)
    assert.equal(printable, (task_answer('{"Response":{"TaskId":"' .. printable .. '","RequestId":"r"}}')))
  end)

  it("declines everything else, for the general decoder", function()
    local long = ("x"):rep(decode.MAX_ID + 1)
    for _, body in ipairs {
      "", "{}", "null", '{"Response":{}}',
      '{"Response":{"TaskId":"","RequestId":"r"}}',                       -- empty TaskId: an error
      '{"Response":{"TaskId":"t","RequestId":""}}',
      '{"Response":{"TaskId":"' .. long .. '","RequestId":"r"}}',         -- would be cut
      '{"Response":{"TaskId":"t\\/x","RequestId":"r"}}',                  -- an escape
      '{"Response":{"TaskId":"t\tx","RequestId":"r"}}',                   -- a control byte
      '{"Response":{"TaskId":"t\127x","RequestId":"r"}}',                 -- DEL, escaped by clean
      '{"Response":{"TaskId":"t\195\169","RequestId":"r"}}',              -- non-ASCII
      '{"Response":{"TaskId":"t","TaskId":"u","RequestId":"r"}}',         -- repeated member
      '{"Response":{"TaskId":"t","RequestId":"r","Extra":1}}',            -- another member
      '{"Response":{"TaskId":"t","RequestId":"r"},"Other":1}',
      '{"Response":{"TaskId":"t","RequestId":"r"}}x',                     -- trailing bytes
      '{"Response":{"TaskId":"t","RequestId":"r"}}\0',
      '{"Response":{"TaskId":"t","RequestId":"r"}',                       -- cut short
      '{"Response":{"TaskId":1,"RequestId":"r"}}',                        -- not a string
      '{"Response":{"Error":{"Code":"InternalError","Message":"m"},"RequestId":"r"}}',
      '{"response":{"TaskId":"t","RequestId":"r"}}',                      -- names are exact
    } do
      assert.is_nil(task_answer(body), body)
    end
  end)

  it("gives what the general decoder gives, over thousands of mutated answers", function()
    -- Mutations of answers built from the bytes that matter to JSON; every
    -- body the fast path accepts must decode the same the general way.
    math.randomseed(12)
    local alphabet = { '"', "\\", "{", "}", ":", ",", " ", "\n", "\t", "\r", "\f", "\v", "x", "0", "u", "/",
                       "\0", "\127", "\128", "\191", "\195\169", "\239\187\191", "\255", "TaskId",
                       "RequestId", "Response", '"TaskId"', '"RequestId"', ("y"):rep(60), ("z"):rep(64) }
    local accepted, declined = 0, 0
    for i = 1, 20000 do
      -- (ids of 127 and 128 bytes: one more byte, inserted or overwritten, crosses the limit)
      local body = i % 3 == 0 and CANONICAL or i % 3 == 1 and '{"Response":{"RequestId":"r-1","TaskId":"t-1"}}'
        or '{"Response":{"TaskId":"' .. ("t"):rep(127) .. '","RequestId":"' .. ("r"):rep(128) .. '"}}'
      for _ = 1, math.random(0, 3) do
        local at = math.random(0, #body)
        local kind = math.random(3)
        local piece = alphabet[math.random(#alphabet)]
        if kind == 1 then body = body:sub(1, at) .. piece .. body:sub(at + 1)          -- insert
        elseif kind == 2 then body = body:sub(1, at - 1) .. body:sub(at + 1)            -- delete
        else body = body:sub(1, at - 1) .. piece .. body:sub(at + #piece) end          -- overwrite
      end
      local t, r = task_answer(body)
      if t then
        accepted = accepted + 1
        local gt, gr = general(body)
        assert.equal(gt, t, body)
        assert.equal(gr, r, body)
      else
        declined = declined + 1
      end
    end
    -- Both outcomes were exercised (the unmutated bodies alone are accepted).
    assert.is_true(accepted > 1000, "accepted " .. accepted)
    assert.is_true(declined > 1000, "declined " .. declined)
  end)

  it("decode.task gives the same table on both paths", function()
    local fast = decode.task { status = 200, body = CANONICAL, attempts = 2 }
    local slow = decode.task { status = 200, body = '{"Response":{"TaskId":"15213-abc","RequestId":"9a5b-c0de","X":0}}',
                               attempts = 2 }
    assert.same({ task_id = "15213-abc", request_id = "9a5b-c0de", attempts = 2 }, fast)
    assert.same(fast, slow)
    -- a non-200 with that body is still an HTTP error
    local res, err = decode.task { status = 503, body = CANONICAL, attempts = 1 }
    assert.is_nil(res)
    assert.equal("ClientError.HttpStatusCodeError", err.code)
  end)

  it("refuses what is not a string", function()
    assert.has_error(function() task_answer(nil) end)
    assert.has_error(function() task_answer({}) end)
  end)
end)

describe("ecdn.client decodes the common answer in C", function()
  local function purge_from(mode)
    local res, err, res2
    raw.with(mode, function(endpoint)
      local c = assert(ecdn.client { secret_id = "AKIDanswerspec0001", secret_key = "answer-spec-key",
                                     endpoint = endpoint, timeout = 20 })
      res, err = c:purge { "https://www.example.com/a.jpg" }
      res2 = c:purge_paths({ "https://www.example.com/dir/" }, { flush_type = "flush" })
      c:close()
    end)
    return res, err, res2
  end

  it("the same result from the fast path (the usual answer) and the general one (another shape)", function()
    local fast, err, fast_paths = purge_from("ok")
    assert.is_nil(err)
    local general_res, err2, general_paths = purge_from("spaced_task")
    assert.is_nil(err2)
    assert.same({ task_id = "raw-task-1", request_id = "raw-request-1", attempts = 1 }, fast)
    assert.same(fast, general_res)
    assert.same(fast, fast_paths)
    assert.same(fast, general_paths)
  end)
end)

describe("ecdn.client's per-request memory", function()
  local sim = require "support.sim"
  local ID, KEY = "AKIDanswerspecspare00000000000000000", "AnswerSpecSpareKey00000000000000"
  local s
  setup(function() s = sim.start { args = { "--rate", "0", "--secret", ID .. ":" .. KEY }, log = true } end)
  teardown(function() s:stop() end)

  it("every answer is the request's own when finalizers purge on the same client mid-call", function()
    local c = assert(ecdn.client { secret_id = ID, secret_key = KEY, endpoint = s.url, rate = 0 })
    local got, inner_failed, k = {}, nil, 0
    local function on_gc()
      k = k + 1
      local url = "https://www.example.com/inner/" .. k .. ".jpg"
      local res, err = c:purge { url }
      if res then got[url] = res else inner_failed = err end
    end
    -- A collector that never rests, so that finalizers also run while C
    -- pushes an answer (after the request, before the call returns).
    local restore = gc.restless()
    for i = 1, 300 do
      for _ = 1, 3 do gc.garbage(on_gc) end
      local url = "https://www.example.com/outer/" .. i .. ".jpg"
      got[url] = assert(c:purge { url })
    end
    restore()
    collectgarbage()
    collectgarbage()
    c:close()
    assert.is_nil(inner_failed)
    assert.is_true(k > 0, "no finalizer ran")
    -- Each result names the task and request the simulator logged for its URL.
    local n = 0
    for _, e in ipairs(s:log_entries()) do
      local res = got[e.urls[1]]
      assert.is_table(res, e.urls[1])
      assert.equal(e.task_id, res.task_id, e.urls[1])
      assert.equal(e.request_id, res.request_id, e.urls[1])
      n = n + 1
    end
    assert.equal(300 + k, n)
  end)
end)
