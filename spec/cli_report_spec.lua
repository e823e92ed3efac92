-- bin/ecdn-purge: what the job reports. --json (the report as one object:
-- every distinct URL in exactly one of tasks[*].urls and errors[*].urls),
-- --failed FILE (the URLs not purged, ready for -f: a re-run purges exactly
-- them), the summary line, and the exit codes 0, 1 and 2 (130: cli_spec, cli_pty_spec).
local sim = require "support.sim"
local cli = require "support.cli"
local proc = require "support.proc"


local urls = cli.urls

local with = cli.args

describe("ecdn-purge --json", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0" }, log = true } end)
  teardown(function() s:stop() end)

  it("the report: counts, tasks with their URLs, errors with their URLs; each distinct URL once", function()
    local input = { "https://www.example.com/1", "https://www.example.com/2", "not-a-url",
                    "https://www.example.com/1", "https://www.example.com/3", "https://www.example.com/\255" }
    local out, err, rc = cli.run(s, with(input, "--json", "--batch", "2"))
    assert.equal(1, rc, err)
    local doc = cli.json(out, err) -- valid JSON even with invalid UTF-8 in the input
    assert.equal(3, doc.ok)
    assert.equal(2, doc.failed)
    assert.equal(1, doc.deduped)
    assert.equal(0, doc.duplicates)
    assert.equal(2, doc.requests)
    assert.equal(0, doc.retries)
    assert.is_number(doc.seconds)
    assert.is_nil(doc.statuses)
    assert.is_nil(doc.interrupted)
    local seen = {}
    for _, t in ipairs(doc.tasks) do
      assert.is_string(t.task_id)
      assert.is_string(t.request_id)
      assert.same(t.urls, s:log_entries()[(function()
        for i, e in ipairs(s:log_entries()) do if e.task_id == t.task_id then return i end end
      end)()].urls)
      for _, u in ipairs(t.urls) do seen[#seen + 1] = u end
    end
    for _, e in ipairs(doc.errors) do
      assert.equal("client", e.kind)
      assert.is_false(e.retryable)
      assert.is_false(e.sent)
      assert.is_string(e.message)
      for _, u in ipairs(e.urls) do seen[#seen + 1] = u end
    end
    table.sort(seen)
    -- The byte that is not UTF-8 is shown as \xFF (the library's convention); --failed keeps it raw.
    assert.same({ "https://www.example.com/1", "https://www.example.com/2", "https://www.example.com/3",
                  "https://www.example.com/\\xFF", "not-a-url" }, seen)
    assert.equal("ClientError.InvalidParameter", doc.errors[1].code)
    assert.equal("URL #3 does not start with http:// or https://", doc.errors[1].message)
    -- stderr still gets the summary.
    assert.matches("^ecdn%-purge: 3 of 5 URLs purged", err)
  end)

  it("an empty list of errors is [], not {}", function()
    local out, _, rc = cli.run(s, { "--json", "https://www.example.com/only" })
    assert.equal(0, rc)
    assert.truthy(out:find('"errors":[]', 1, true), out)
  end)
end)

describe("ecdn-purge --failed FILE", function()
  local s
  after_each(function() if s then s:stop() s = nil end end)

  it("lists the URLs not purged; a re-run with -f FILE purges exactly those", function()
    -- Two accounts on one simulator with a daily quota of 3 URLs each: the
    -- first runs out after 3, the re-run goes with the second.
    local id1, key1 = "AKIDFIRSTACCOUNT0000000000000000000", "FirstAccountKey00000000000000000"
    local id2, key2 = "AKIDSECONDACCOUNT000000000000000000", "SecondAccountKey0000000000000000"
    s = sim.start { args = { "--rate", "0", "--quota", "3", "--secret", id1 .. ":" .. key1,
                             "--secret", id2 .. ":" .. key2 }, log = true }
    local failed = proc.tmpname()
    finally(function() os.remove(failed) end)
    local list = urls(5)
    local out, err, rc = cli.run(s, with(list, "--batch", "1", "--concurrency", "1", "--failed", failed))
    assert.equal(1, rc)
    assert.equal(3, #cli.lines(out))
    assert.matches("^ecdn%-purge: 3 of 5 URLs purged .*; 2 not purged: 2 LimitExceeded%.EcdnPurgeUrlExceedDayLimit",
                   err)
    assert.equal(list[4] .. "\n" .. list[5] .. "\n", proc.read_file(failed))
    -- The re-run, from the file.
    out, err, rc = cli.run(s, { "-f", failed }, { id = id2, key = key2 })
    assert.equal(0, rc, err)
    assert.equal(1, #cli.lines(out))
    local seen = s:url_counts()
    for _, u in ipairs(list) do assert.equal(1, seen[u], u) end -- all purged, none twice
  end)

  it("under faults: nothing lost; the file holds exactly the URLs the service never took", function()
    -- Faults refused before the purge is taken (HTTP 5xx, InternalError); no retries.
    s = sim.start { args = { "--rate", "0", "--fail-rate", "0.5", "--seed", "7" }, log = true }
    local clean = sim.start { args = { "--rate", "0" }, log = true }
    finally(function() clean:stop() end)
    local failed = proc.tmpname()
    finally(function() os.remove(failed) end)
    local list = urls(12, "f")
    local out, err, rc = cli.run(s, with(list, "--json", "--retries", "0", "--batch", "1", "--concurrency", "1",
                                         "--failed", failed))
    local _
    assert.equal(1, rc, err)
    local doc = cli.json(out, err)
    assert.is_true(doc.failed > 0 and doc.ok > 0, out)
    local taken = s:url_counts()
    local listed = {}
    for _, u in ipairs(cli.lines(proc.read_file(failed))) do listed[u] = true end
    for _, u in ipairs(list) do
      assert.is_true((taken[u] == 1) ~= (listed[u] == true), u) -- exactly one of the two
    end
    assert.equal(doc.failed, #cli.lines(proc.read_file(failed)))
    _, err, rc = cli.run(clean, { "-f", failed })
    assert.equal(0, rc, err)
    local again = clean:url_counts()
    for _, u in ipairs(list) do assert.equal(1, (taken[u] or 0) + (again[u] or 0), u) end
  end)

  it("can be the -f file of the run that rewrites it (a retry loop)", function()
    s = sim.start { args = { "--rate", "0", "--quota", "1" }, log = true }
    local path = cli.file("https://www.example.com/r1\nhttps://www.example.com/r2\n")
    finally(function() os.remove(path) end)
    local _, err, rc = cli.run(s, { "-f", path, "--failed", path, "--batch", "1", "--concurrency", "1" })
    assert.equal(1, rc, err)
    assert.equal("https://www.example.com/r2\n", proc.read_file(path)) -- read first, then rewritten
  end)

  it("invalid URLs are in it too, byte for byte, in input order", function()
    s = sim.start { args = { "--rate", "0" }, log = true }
    local failed = proc.tmpname()
    finally(function() os.remove(failed) end)
    local _, _, rc = cli.run(s, { "--failed", failed, "bad-1", "https://www.example.com/ok",
                                  "https://www.example.com/\255", "bad-1", "bad-2" })
    assert.equal(1, rc)
    assert.equal("bad-1\nhttps://www.example.com/\255\nbad-2\n", proc.read_file(failed))
  end)

  it("is written empty when everything was purged", function()
    s = sim.start { args = { "--rate", "0" } }
    local failed = cli.file("stale\n")
    finally(function() os.remove(failed) end)
    local _, _, rc = cli.run(s, { "--failed", failed, "https://www.example.com/ok" })
    assert.equal(0, rc)
    assert.equal("", proc.read_file(failed))
  end)

  it("holds every URL when nothing could be sent (missing credentials, refused credentials)", function()
    s = sim.start { args = { "--rate", "0" } }
    local failed = proc.tmpname()
    finally(function() os.remove(failed) end)
    local list = { "https://www.example.com/a", "https://www.example.com/b", "https://www.example.com/a" }
    local _, err, rc = cli.run(nil, with(list, "--failed", failed))
    assert.equal(2, rc)
    assert.truthy(err:find("ClientError.CredentialError", 1, true))
    assert.equal("https://www.example.com/a\nhttps://www.example.com/b\n", proc.read_file(failed))
    os.remove(failed)
    _, err, rc = cli.run(s, with(list, "--failed", failed), { key = "wrong-key" })
    assert.equal(1, rc) -- the service said no: something was sent
    assert.truthy(err:find("AuthFailure.SignatureFailure", 1, true))
    assert.equal("https://www.example.com/a\nhttps://www.example.com/b\n", proc.read_file(failed))
  end)

  it("the file of a re-run (-f L --failed L) survives a job killed before its end", function()
    s = sim.start { args = { "--rate", "0", "--delay-ms", "30000" } }
    local list = cli.file("https://www.example.com/a\nhttps://www.example.com/b\n")
    finally(function() os.remove(list) end)
    local pid = proc.run(cli.command(s, { "-f", list, "--failed", list, "--timeout", "60" })
                         .. " </dev/null >/dev/null 2>&1 & echo $!"):match("%d+")
    local deadline = os.time() + 30
    while s:stats().requests < 1 and os.time() < deadline do os.execute("sleep 0.02") end
    assert.equal(1, s:stats().requests) -- the job is waiting for its answer
    os.execute("kill -9 " .. pid)
    assert.equal("https://www.example.com/a\nhttps://www.example.com/b\n", proc.read_file(list))
    -- A --failed file that did not exist is not left behind empty (empty reads as "all went well").
    local fresh = proc.tmpname()
    os.remove(fresh)
    local before = s:stats().requests
    pid = proc.run(cli.command(s, { "--failed", fresh, "--timeout", "60", "https://www.example.com/c" })
                   .. " </dev/null >/dev/null 2>&1 & echo $!"):match("%d+")
    while s:stats().requests <= before and os.time() < deadline do os.execute("sleep 0.02") end
    assert.equal(before + 1, s:stats().requests)
    os.execute("kill -9 " .. pid)
    assert.is_nil(io.open(fresh, "rb"))
  end)

  it("a file that cannot be written at the end (a full disk) is said on stderr: exit 3", function()
    s = sim.start { args = { "--rate", "0" }, log = true }
    local _, err, rc = cli.run(s, { "--failed", "/dev/full", "https://www.example.com/a", "ftp://bad" })
    assert.equal(3, rc, err)
    assert.matches("ecdn%-purge: %-%-failed /dev/full could not be written: [^\n]*No space", err)
    assert.matches("1 of 2 URLs purged", err) -- the summary is still there
    assert.same({ "https://www.example.com/a" }, s:logged_urls())
  end)

  it("a path that cannot be written is a usage error before anything is sent", function()
    s = sim.start { args = { "--rate", "0" } }
    local _, err, rc = cli.run(s, { "--failed", "/nonexistent/dir/failed.txt", "https://www.example.com/a" })
    assert.equal(2, rc)
    assert.truthy(err:find("--failed: /nonexistent/dir/failed.txt", 1, true), err)
    assert.equal(0, s:stats().requests)
  end)
end)

describe("ecdn-purge exit codes", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0" }, log = true } end)
  teardown(function() s:stop() end)

  it("0 every URL purged, 1 some not, 2 nothing sent", function()
    local cases = {
      { 0, { "https://www.example.com/ok" } },
      { 1, { "https://www.example.com/ok", "bad" } },                  -- some invalid
      { 1, { "https://www.example.com/ok" }, { key = "wrong-key" } },  -- refused by the service
      { 2, { "bad", "worse" } },                                         -- every URL invalid
      { 2, { "--frobnicate", "https://www.example.com/ok" } },           -- usage
      { 2, { "https://www.example.com/ok" }, "no credentials" },
    }
    for i, c in ipairs(cases) do
      local who = s
      if c[3] == "no credentials" then who = nil end
      local _, err, rc = cli.run(who, c[2], type(c[3]) == "table" and c[3] or nil)
      assert.equal(c[1], rc, "case " .. i .. ": " .. err)
    end
  end)

  it("3 when the report cannot be written to stdout; the summary on stderr says what was purged", function()
    local errf = proc.tmpname()
    finally(function() os.remove(errf) end)
    local before = #s:logged_urls()
    for _, json in ipairs { true, false } do
      local args = json and { "--json", "https://www.example.com/full" } or { "https://www.example.com/full" }
      local _, rc = proc.run(cli.command(s, args) .. " </dev/null >/dev/full 2>" .. errf)
      local err = proc.read_file(errf)
      assert.equal(3, rc, err)
      assert.matches("the report %(stdout%) could not be written", err)
      assert.matches("1 of 1 URL purged", err)
    end
    assert.equal(before + 2, #s:logged_urls())
  end)

  it("3 when stdout is a pipe whose reader is gone (no death by SIGPIPE); the summary is on stderr", function()
    local errf, rcf = proc.tmpname(), proc.tmpname()
    finally(function() os.remove(errf) os.remove(rcf) end)
    -- (SIGPIPE as a shell gives it, not as the test runner's children inherit it)
    proc.run("(env --default-signal=PIPE " .. cli.command(s, { "https://www.example.com/pipe" })
             .. " </dev/null 2>" .. errf .. "; echo $? >" .. rcf .. ") | true")
    local err = proc.read_file(errf)
    assert.equal("3\n", proc.read_file(rcf), err)
    assert.matches("the report %(stdout%) could not be written", err)
    assert.matches("1 of 1 URL purged", err)
  end)

  it("2 and a clear word when $ECDN_METADATA_ENDPOINT is malformed, even with credentials", function()
    local out, err, rc = cli.run(s, { "https://www.example.com/a" }, { env = { ECDN_METADATA_ENDPOINT = "nohost" } })
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("^ecdn%-purge: ClientError%.CredentialError: the environment variable ECDN_METADATA_ENDPOINT "
                   .. "must be \"off\" or http://host%[:port%]", err)
    assert.is_nil(err:find("traceback", 1, true))
  end)

  it("the summary groups what was not purged by error code, most URLs first", function()
    local _, err, rc = cli.run(s, { "--batch", "1", "https://www.example.com/ok", "bad-1", "bad-2",
                                    "https://*.example.com/x" })
    assert.equal(1, rc)
    local summary = cli.lines(err)[4]
    assert.equal("ecdn-purge: 1 of 4 URLs purged (1 task, 1 request, 0 retries, ", summary:sub(1, 62))
    assert.matches("; 3 not purged: 2 ClientError%.InvalidParameter %(URL #2 does not start with http:// or "
                   .. "https://%), 1 InvalidParameter%.EcdnPurgeWildcardNotAllowed %(URL #4 has a wildcard host .*%)$",
                   summary)
  end)
end)

describe("ecdn-purge and an unknown outcome", function()
  it("a request that went out with no answer: its URLs are 'unknown', not 'not purged'; --failed has them", function()
    -- Every answer is dropped; with this seed the purge is applied before the drop.
    local s = sim.start { args = { "--rate", "0", "--drop-rate", "1", "--seed", "2" }, log = true }
    finally(function() s:stop() end)
    local failed = proc.tmpname()
    finally(function() os.remove(failed) end)
    local out, err, rc = cli.run(s, { "--retries", "0", "--json", "--failed", failed,
                                      "https://www.example.com/a", "ftp://bad" })
    assert.same({ "https://www.example.com/a" }, s:logged_urls()) -- the service purged it
    assert.equal(1, rc)
    assert.matches("^ecdn%-purge: 0 of 2 URLs purged %([^)]*%); 1 not purged: 1 ClientError%.InvalidParameter %b(); "
                   .. "1 with an unknown outcome %(may have been purged%): 1 ClientError%.NetworkError", err)
    local doc = cli.json(out, err)
    assert.equal(2, doc.failed)
    assert.equal(1, doc.unknown)
    assert.equal("https://www.example.com/a\nftp://bad\n", proc.read_file(failed))
  end)
end)
