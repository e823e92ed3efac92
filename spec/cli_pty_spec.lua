-- bin/ecdn-purge on a real pseudo-terminal (support.pty, script(1) from
-- util-linux): the progress bar is drawn on stderr when stderr is a
-- terminal and not otherwise, --progress / --no-progress force it, Ctrl-C
-- typed on the terminal ends the job with the report so far, and URLs can be
-- typed in. No timing is asserted: Ctrl-C is sent once the simulator holds
-- the requests (it answers after a minute), and every wait has a deadline
-- far beyond what the machine needs.
local cjson = require "cjson"
local sim = require "support.sim"
local cli = require "support.cli"
local proc = require "support.proc"
local pty = require "support.pty"

local JOB = { "--batch", "1", "https://www.example.com/p1", "https://www.example.com/p2",
              "https://www.example.com/p3" }

-- `options` followed by JOB's arguments.
local function with(options, job)
  local t = {}
  for _, a in ipairs(options) do t[#t + 1] = a end
  for _, a in ipairs(job) do t[#t + 1] = a end
  return t
end

-- The bar: "\r[####....] 3/3 URLs, ..." (drawn in place).
local BAR = "\r%[[#.]+%] %d+/%d+ URLs"

describe("ecdn-purge on a terminal", function()
  local s, out_file, err_file
  setup(function() s = sim.start { args = { "--rate", "0" }, log = true } end)
  teardown(function() s:stop() end)
  before_each(function()
    out_file, err_file = proc.tmpname(), proc.tmpname()
  end)
  after_each(function()
    os.remove(out_file)
    os.remove(err_file)
  end)

  it("draws the progress bar on stderr, in place, and ends it before the summary", function()
    local screen, rc = pty.run(cli.command(s, JOB) .. " >" .. out_file)
    assert.equal(0, rc, screen)
    assert.matches(BAR, screen)
    -- Its last state: every URL done, then a line break and the summary.
    assert.matches("%[############%] 3/3 URLs, 3 requests, 0 retries, %d+ URLs/s, ETA 0s *\r\n"
                   .. "ecdn%-purge: 3 of 3 URLs purged %(3 tasks, 3 requests, 0 retries, [%d.]+ s%)\r\n$", screen)
    -- stdout (a file here) has the task ids only.
    assert.equal(3, #cli.lines(proc.read_file(out_file)))
    assert.is_nil(proc.read_file(out_file):find("[\r%[]"))
  end)

  it("--no-progress: no bar on the terminal, the summary only", function()
    local screen, rc = pty.run(cli.command(s, with({ "--no-progress" }, JOB)) .. " >" .. out_file)
    assert.equal(0, rc, screen)
    assert.is_nil(screen:find("\r[", 1, true), screen)
    assert.matches("^ecdn%-purge: 3 of 3 URLs purged [^\r\n]*\r\n$", screen)
  end)

  it("no bar when stderr is not a terminal, even with stdin and stdout on one", function()
    local screen, rc = pty.run(cli.command(s, JOB) .. " 2>" .. err_file)
    assert.equal(0, rc, screen)
    local err = proc.read_file(err_file)
    assert.is_nil(err:find("\r", 1, true), err)
    assert.matches("^ecdn%-purge: 3 of 3 URLs purged [^\n]*\n$", err)
    assert.is_nil(screen:find("URLs", 1, true)) -- the task ids only
  end)

  it("none without any terminal; --progress forces it", function()
    local _, err, rc = cli.run(s, JOB)
    assert.equal(0, rc, err)
    assert.is_nil(err:find("\r", 1, true), err)
    _, err, rc = cli.run(s, with({ "--progress" }, JOB))
    assert.equal(0, rc, err)
    assert.matches(BAR, err)
    assert.matches("3/3 URLs, 3 requests, 0 retries, %d+ URLs/s, ETA 0s *\necdn%-purge: 3 of 3 URLs purged", err)
  end)

  it("reads URLs typed on the terminal, with a hint, until Ctrl-D", function()
    local t = pty.spawn(cli.command(s, { "--no-progress" }) .. " >" .. out_file)
    t:send("https://www.example.com/typed-1\nhttps://www.example.com/typed-2\n\4")
    local screen, rc = t:wait()
    assert.equal(0, rc, screen)
    assert.truthy(screen:find("ecdn-purge: reading URLs from the terminal, one per line; end with Ctrl-D", 1, true),
                  screen)
    local task = proc.read_file(out_file):match("^(%S+)\n$")
    local found
    for _, e in ipairs(s:log_entries()) do if e.task_id == task then found = e end end
    assert.same({ "https://www.example.com/typed-1", "https://www.example.com/typed-2" }, found.urls)
  end)
end)

describe("ecdn-purge and Ctrl-C typed on the terminal", function()
  it("ends the requests in flight at once: exit 130, the report so far, --failed written", function()
    -- The simulator holds every answer for a minute: the requests stay in flight.
    local s = sim.start { args = { "--rate", "0", "--delay-ms", "60000" } }
    local out_file, failed = proc.tmpname(), proc.tmpname()
    finally(function()
      s:stop()
      os.remove(out_file)
      os.remove(failed)
    end)
    local args = with({ "--json", "--concurrency", "2", "--timeout", "120", "--failed", failed }, JOB)
    local t = pty.spawn(cli.command(s, args) .. " >" .. out_file)
    -- Both requests are in flight once the simulator has read them.
    local deadline = os.time() + 30
    while s:stats().requests < 2 and os.time() < deadline do os.execute("sleep 0.02") end
    assert.equal(2, s:stats().requests)
    t:send("\3") -- the terminal's INTR character: SIGINT to the foreground process group
    local screen, rc = t:wait()
    assert.equal(130, rc, screen)
    -- The bar was ended with a line break; then the summary and the word on the requests in flight.
    assert.matches(BAR, screen)
    assert.matches("\r\necdn%-purge: 0 of 3 URLs purged %(0 tasks, 2 requests, 0 retries, [%d.]+ s%); "
                   .. "1 not purged: 1 ClientError%.Interrupted %(interrupted before this batch was sent%); "
                   .. "2 with an unknown outcome %(may have been purged%): 2 ClientError%.Interrupted %([^\r\n]*%)\r\n"
                   .. "ecdn%-purge: interrupted; the 2 requests in flight may or may not have been applied "
                   .. "%(their 2 URLs are counted as unknown%)\r\n$", screen)
    -- The report so far, on stdout.
    local doc = cjson.decode(proc.read_file(out_file))
    assert.is_true(doc.interrupted)
    assert.equal(0, doc.ok)
    assert.equal(3, doc.failed)
    local sent, unsent = 0, 0
    for _, e in ipairs(doc.errors) do
      assert.equal("ClientError.Interrupted", e.code)
      if e.sent then sent = sent + #e.urls else unsent = unsent + #e.urls end
    end
    assert.equal(2, sent)   -- in flight: may have been applied
    assert.equal(1, unsent) -- never started
    assert.equal("https://www.example.com/p1\nhttps://www.example.com/p2\nhttps://www.example.com/p3\n",
                 proc.read_file(failed))
  end)
end)

describe("ecdn-purge --wait and Ctrl-C", function()
  it("stops waiting: exit 130, the statuses known so far, and it says every batch had been sent", function()
    -- Tasks stay "process" for ten minutes: the CLI polls, then sleeps between polls.
    local s = sim.start { args = { "--rate", "0", "--task-ms", "600000" }, log = true }
    local out_file = proc.tmpname()
    finally(function()
      s:stop()
      os.remove(out_file)
    end)
    local t = pty.spawn(cli.command(s, { "--wait", "https://www.example.com/w1" }) .. " >" .. out_file)
    -- The purge, then the first DescribePurgeTasks.
    local deadline = os.time() + 30
    while s:stats().requests < 2 and os.time() < deadline do os.execute("sleep 0.02") end
    assert.equal(2, s:stats().requests)
    t:send("\3")
    local screen, rc = t:wait()
    assert.equal(130, rc, screen)
    assert.truthy(screen:find("ecdn-purge: 1 of 1 URL purged", 1, true), screen)
    assert.truthy(screen:find("ecdn-purge: interrupted; every batch had been sent", 1, true), screen)
    local task = s:log_entries()[1].task_id
    assert.matches("^" .. task:gsub("%p", "%%%0") .. " %a+\n$", proc.read_file(out_file))
  end)
end)
