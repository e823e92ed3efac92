-- bin/ecdn-purge: the options that shape the job (--batch, --rate,
-- --concurrency, --retries, --timeout, --deadline, --no-dedupe,
-- --quota-check, --service) and --wait / --wait-timeout, against the simulator.
-- Nothing here asserts that something is fast: only lower bounds and counts.
local sim = require "support.sim"
local cli = require "support.cli"


local urls = cli.urls

local args = cli.args

-- Runs the CLI with --json; returns the decoded report, stderr, exit code.
local function json_run(s, a, opts)
  table.insert(a, 1, "--json")
  local out, err, rc = cli.run(s, a, opts)
  local doc = cli.json(out, err)
  return doc, err, rc
end

describe("ecdn-purge options", function()
  local s
  after_each(function() if s then s:stop() s = nil end end)

  it("--batch N: at most N URLs per request, input order kept", function()
    s = sim.start { args = { "--rate", "0" }, log = true }
    local list = urls(5)
    local doc, err, rc = json_run(s, args(list, "--batch", "2", "--concurrency", "1"))
    assert.equal(0, rc, err)
    assert.equal(3, doc.requests)
    local sizes = {}
    for _, e in ipairs(s:log_entries()) do sizes[#sizes + 1] = #e.urls end
    assert.same({ 2, 2, 1 }, sizes)
    assert.same(list, s:logged_urls())
  end)

  it("--batch out of range, or not a whole number: usage, exit 2", function()
    for _, bad in ipairs { "0", "1001", "2.5", "x" } do
      local _, err, rc = cli.run(nil, { "--batch", bad, "https://www.example.com/" })
      assert.equal(2, rc, bad)
      assert.truthy(err:find("--batch must be a whole number from 1 to 1000", 1, true), err)
    end
  end)

  it("--rate N: at most N requests in any second (5 one-URL requests at 2/s take 2 s at least)", function()
    s = sim.start { args = { "--rate", "0" }, log = true }
    local doc, err, rc = json_run(s, args(urls(5), "--rate", "2", "--batch", "1"))
    assert.equal(0, rc, err)
    assert.equal(5, doc.requests)
    -- Requests 1-2 at once, 3-4 a second later, 5 a second after that: a
    -- lower bound only, which a slow machine cannot break.
    assert.is_true(doc.seconds >= 1.95, "took " .. doc.seconds .. " s")
  end)

  it("--rate 0: no client-side limit (the simulator's own limit then refuses the excess)", function()
    -- The simulator's clock stands still, so its window never slides: 2 accepted, the 3rd refused.
    s = sim.start { args = { "--rate", "2", "--fake-clock", "now" }, log = true }
    local doc, err, rc = json_run(s, args(urls(3), "--rate", "0", "--batch", "1", "--retries", "0"))
    assert.equal(1, rc, err)
    assert.equal(2, doc.ok)
    assert.equal(1, doc.failed)
    assert.equal("RequestLimitExceeded", doc.errors[1].code)
    assert.matches("; 1 not purged: 1 RequestLimitExceeded %(", err)
  end)

  it("--retries N: a refused batch is sent N more times, no more", function()
    s = sim.start { args = { "--rate", "1", "--fake-clock", "now" }, log = true }
    local doc, err, rc = json_run(s, args(urls(2), "--rate", "0", "--batch", "1", "--concurrency", "1",
                                          "--retries", "2"))
    assert.equal(1, rc, err)
    assert.equal(2, doc.retries)
    assert.equal(4, doc.requests) -- 1 accepted, then 1 + 2 retries refused
    assert.equal(1, doc.ok)
    assert.equal("RequestLimitExceeded", doc.errors[1].code)
    assert.matches("%(1 task, 4 requests, 2 retries, ", err)
    s:stop()
    s = sim.start { args = { "--rate", "1", "--fake-clock", "now" }, log = true }
    doc = json_run(s, args(urls(2), "--rate", "0", "--batch", "1", "--concurrency", "1", "--retries", "0"))
    assert.equal(0, doc.retries)
    assert.equal(2, doc.requests)
  end)

  it("--concurrency N: N requests in flight, each on its own connection", function()
    s = sim.start { args = { "--rate", "0", "--delay-ms", "300" } }
    local doc, err, rc = json_run(s, args(urls(3), "--rate", "0", "--batch", "1", "--concurrency", "1"))
    assert.equal(0, rc, err)
    assert.equal(3, #doc.tasks)
    assert.equal(1, s:stats().connections) -- one after the other, on one kept-alive connection
    s:stop()
    s = sim.start { args = { "--rate", "0", "--delay-ms", "300" } }
    doc, err, rc = json_run(s, args(urls(3), "--rate", "0", "--batch", "1", "--concurrency", "3"))
    assert.equal(0, rc, err)
    assert.equal(3, #doc.tasks)
    assert.equal(3, s:stats().connections) -- all three started before any answer
  end)

  it("--concurrency out of range: usage, exit 2", function()
    local _, _, rc = cli.run(nil, { "--concurrency", "0", "https://www.example.com/" })
    assert.equal(2, rc)
    _, _, rc = cli.run(nil, { "--concurrency", "65", "https://www.example.com/" })
    assert.equal(2, rc)
  end)

  it("--timeout S applies to each request: a slow answer is a network error, sent = true", function()
    s = sim.start { args = { "--rate", "0", "--delay-ms", "3000" } }
    local doc, err, rc = json_run(s, { "--timeout", "0.5", "--retries", "0", "https://www.example.com/slow" })
    assert.equal(1, rc, err)
    assert.equal(0, doc.ok)
    local e = doc.errors[1]
    assert.equal("ClientError.NetworkError", e.code)
    assert.equal("CURLE_OPERATION_TIMEDOUT", e.detail)
    assert.is_true(e.sent) -- it went out whole: the service may have acted on it
    assert.same({ "https://www.example.com/slow" }, e.urls)
  end)

  it("--deadline S: no request starts after S seconds; the rest is reported, not sent", function()
    s = sim.start { args = { "--rate", "0", "--delay-ms", "1500" }, log = true }
    local doc, err, rc = json_run(s, args(urls(3), "--deadline", "1", "--batch", "1", "--concurrency", "1"))
    assert.equal(1, rc, err)
    assert.equal(1, doc.ok) -- the first, started at once, answered after 1.5 s
    assert.equal(2, doc.failed)
    assert.equal("ClientError.Deadline", doc.errors[1].code)
    assert.is_false(doc.errors[1].sent)
    assert.equal(1, #s:log_entries())
    assert.matches("2 not purged: 2 ClientError%.Deadline", err)
  end)

  it("repeated URLs are purged once; --no-dedupe sends them again", function()
    s = sim.start { args = { "--rate", "0" }, log = true }
    local a, b = "https://www.example.com/a", "https://www.example.com/b"
    local doc, err, rc = json_run(s, { a, b, a })
    assert.equal(0, rc, err)
    assert.equal(1, doc.deduped)
    assert.equal(2, doc.ok)
    assert.matches("; 1 repeated URL skipped\n$", err)
    assert.same({ a, b }, s:logged_urls())
    doc, err, rc = json_run(s, { "--no-dedupe", a, b, a })
    assert.equal(0, rc, err)
    assert.equal(0, doc.deduped)
    assert.same({ a, b, a, b, a }, s:logged_urls())
  end)

  it("--quota-check: a job larger than today's quota is refused before any purge, exit 2", function()
    s = sim.start { args = { "--rate", "0", "--quota", "2" }, log = true }
    local out, err, rc = cli.run(s, args(urls(3), "--quota-check"))
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("^ecdn%-purge: ClientError%.QuotaExceeded: the job has 3 URLs but the daily quota has 2 left", err)
    assert.equal(1, s:stats().requests) -- DescribePurgeQuota only
    assert.equal(0, #s:log_entries())
    -- --json: the error object.
    local doc, _
    doc, _, rc = json_run(s, args(urls(3), "--quota-check"))
    assert.equal(2, rc)
    assert.equal("ClientError.QuotaExceeded", doc.error.code)
    assert.is_false(doc.error.sent)
    -- Within the quota: it goes.
    doc, err, rc = json_run(s, args(urls(2), "--quota-check"))
    assert.equal(0, rc, err)
    assert.equal(2, doc.ok)
    assert.equal(2, doc.requests) -- the lookup and one purge
  end)

  it("--quota-check without --batch takes the account's batch size", function()
    s = sim.start { args = { "--rate", "0", "--batch", "2" }, log = true }
    local doc, err, rc = json_run(s, args(urls(3), "--quota-check"))
    assert.equal(0, rc, err)
    local sizes = {}
    for _, e in ipairs(s:log_entries()) do sizes[#sizes + 1] = #e.urls end
    table.sort(sizes)
    assert.same({ 1, 2 }, sizes)
    assert.equal(3, doc.requests)
  end)

  it("--service cdn sends to the CDN API; a bad --service or --endpoint is usage, exit 2", function()
    s = sim.start { args = { "--rate", "0" }, log = true }
    local _, err, rc = cli.run(s, { "--service", "cdn", "https://www.example.com/c" })
    assert.equal(0, rc, err)
    assert.equal("cdn", s:log_entries()[1].service)
    _, err, rc = cli.run(nil, { "--endpoint", "http://h:80:80", "https://www.example.com/" })
    assert.equal(2, rc)
    assert.truthy(err:find("--endpoint has a bad port", 1, true), err)
    _, _, rc = cli.run(nil, { "--endpoint", "https://user@host", "https://www.example.com/" })
    assert.equal(2, rc)
  end)

  it("numbers that are not: usage errors, nothing sent", function()
    for _, a in ipairs { { "--rate", "-1" }, { "--retries", "x" }, { "--timeout", "0" }, { "--deadline", "-1" },
                         { "--wait-timeout", "5" }, { "--json=yes" }, { "--wait", "--dry-run" } } do
      a[#a + 1] = "https://www.example.com/"
      local _, err, rc = cli.run(nil, a)
      assert.equal(2, rc, table.concat(a, " "))
      assert.truthy(err:find("try 'ecdn-purge --help'", 1, true), err)
    end
  end)
end)

describe("ecdn-purge --wait", function()
  local s
  after_each(function() if s then s:stop() s = nil end end)

  it("prints each task's final status; all done: exit 0", function()
    s = sim.start { args = { "--rate", "0", "--task-ms", "0" }, log = true }
    local out, err, rc = cli.run(s, args(urls(3), "--wait", "--batch", "2"))
    assert.equal(0, rc, err)
    local lines = cli.lines(out)
    assert.equal(2, #lines)
    for _, l in ipairs(lines) do assert.matches("^%S+ done$", l) end
    assert.matches("; tasks: 2 done\n$", err)
  end)

  it("a task that ends in fail: its URLs are not purged, exit 1, and --failed has them", function()
    s = sim.start { args = { "--rate", "0", "--task-ms", "0", "--task-fail-rate", "1" }, log = true }
    local failed = os.tmpname()
    finally(function() os.remove(failed) end)
    local list = urls(2)
    local out, err, rc = cli.run(s, args(list, "--wait", "--failed", failed))
    assert.equal(1, rc)
    assert.matches("^%S+ fail\n$", out)
    assert.matches("^ecdn%-purge: 0 of 2 URLs purged %(1 task, .*; 2 not purged: 2 in failed tasks; tasks: 1 fail\n$",
                   err)
    assert.equal(table.concat(list, "\n") .. "\n", require("support.proc").read_file(failed))
  end)

  it("--wait-timeout S: tasks still running then are reported as such, exit 1", function()
    s = sim.start { args = { "--rate", "0", "--task-ms", "600000" }, log = true }
    local out, err, rc = cli.run(s, { "--wait", "--wait-timeout", "0", "https://www.example.com/slow-task" })
    assert.equal(1, rc)
    assert.matches("^%S+ process\n$", out)
    assert.matches("^ecdn%-purge: 1 of 1 URL purged .*; tasks: 1 process\n$", err)
  end)

  it("--json: statuses by task id", function()
    s = sim.start { args = { "--rate", "0", "--task-ms", "0" }, log = true }
    local doc, err, rc = json_run(s, args(urls(2), "--wait", "--batch", "1"))
    assert.equal(0, rc, err)
    assert.equal(2, #doc.tasks)
    for _, t in ipairs(doc.tasks) do assert.equal("done", doc.statuses[t.task_id]) end
  end)
end)
