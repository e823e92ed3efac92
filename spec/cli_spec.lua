-- bin/ecdn-purge: output and exit codes (0 all purged, 1 some not purged, 2 nothing sent).
-- More in cli_input_spec (sources, --dry-run), cli_options_spec (sending and
-- --wait), cli_report_spec (--json, --failed, exit codes), cli_pty_spec
-- (progress bar, Ctrl-C on a terminal).
local cjson = require "cjson"
local sim = require "support.sim"
local proc = require "support.proc"

-- Runs the CLI with this spec's interpreter; returns stdout, stderr, exit code.
local cli = require("support.cli").run

local function logged(s, task_id)
  for _, e in ipairs(s:log_entries()) do
    if e.task_id == task_id then return e end
  end
end

describe("ecdn-purge", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0" }, log = true } end)
  teardown(function() s:stop() end)

  it("prints the task id and exits 0", function()
    local out, err, rc = cli(s, { "https://www.example.com/a.jpg", "https://www.example.com/b.css" })
    assert.equal(0, rc, err)
    -- stderr: the one-line summary, no progress bar (stderr is not a terminal)
    assert.matches("^ecdn%-purge: 2 of 2 URLs purged %(1 task, 1 request, 0 retries, [%d.]+ s%)\n$", err)
    local task = out:match("^(%S+)\n$")
    assert.truthy(task, out)
    assert.same({ "https://www.example.com/a.jpg", "https://www.example.com/b.css" }, logged(s, task).urls)
  end)

  it("reads URLs from stdin, one per line, when none are arguments", function()
    local out, err, rc = cli(s, { "--service", "cdn" },
      { stdin = "https://www.example.com/1\r\n\nhttps://www.example.com/2\n" })
    assert.equal(0, rc, err)
    local e = logged(s, out:match("^(%S+)\n$"))
    assert.equal("cdn", e.service)
    assert.same({ "https://www.example.com/1", "https://www.example.com/2" }, e.urls)
  end)

  it("--json prints one JSON object", function()
    local out, _, rc = cli(s, { "--json", "https://www.example.com/a.jpg" })
    assert.equal(0, rc)
    local doc = cjson.decode(out)
    assert.is_string(doc.tasks[1].task_id)
    assert.is_string(doc.tasks[1].request_id)
    assert.truthy(logged(s, doc.tasks[1].task_id))
  end)

  it("an API error: one line on stderr, exit 1", function()
    local out, err, rc = cli(s, { "https://www.example.com/a.jpg" }, { key = "wrong-key" })
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("^ecdn%-purge: AuthFailure%.SignatureFailure: [^\n]+ %(request [%w%-]+%)\n$", err)
    assert.is_nil(err:find("wrong-key", 1, true))
  end)

  it("an API error with --json: the error object on stdout, exit 1", function()
    local out, _, rc = cli(s, { "--json", "https://www.example.com/a.jpg" }, { key = "wrong-key" })
    assert.equal(1, rc)
    local doc = cjson.decode(out)
    assert.equal("AuthFailure.SignatureFailure", doc.error.code)
    assert.equal("api", doc.error.kind)
    assert.is_false(doc.error.retryable)
  end)

  it("a network error: exit 1", function()
    local out, err, rc = cli(s, { "--retries", "0", "--endpoint", "http://127.0.0.1:" .. proc.closed_port(),
                                  "https://www.example.com/a.jpg" }, { no_endpoint = true })
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("^ecdn%-purge: 0 of 1 URL purged %([^\n]+%); "
                   .. "1 not purged: 1 ClientError%.NetworkError %([^\n]+%)\n$", err)
  end)

  it("usage errors exit 2", function()
    local _, err, rc = cli(s, {})
    assert.equal(2, rc)
    assert.truthy(err:find("no URLs given", 1, true))
    _, err, rc = cli(s, { "--frobnicate", "https://www.example.com/" })
    assert.equal(2, rc)
    assert.truthy(err:find("unknown option --frobnicate", 1, true))
    _, _, rc = cli(s, { "--service", "cvm", "https://www.example.com/" })
    assert.equal(2, rc)
    _, _, rc = cli(s, { "--timeout" })
    assert.equal(2, rc)
  end)

  it("an invalid URL is refused locally and named; the others are purged: exit 1", function()
    local out, err, rc = cli(s, { "https://www.example.com/ok", "www.example.com/no-scheme" })
    assert.equal(1, rc)
    assert.same({ "https://www.example.com/ok" }, logged(s, out:match("^(%S+)\n$")).urls)
    local lines = require("support.cli").lines(err)
    assert.equal(2, #lines, err)
    assert.matches("^ecdn%-purge: ClientError%.InvalidParameter: URL #2 does not start with http:// or https://$",
                   lines[1])
    assert.matches("^ecdn%-purge: 1 of 2 URLs purged %(.*%); 1 not purged: 1 ClientError%.InvalidParameter %(URL #2 ",
                   lines[2])
  end)

  it("every URL invalid: nothing is sent, exit 2", function()
    local before = s:stats().requests
    local out, err, rc = cli(s, { "www.example.com/no-scheme", "https://www.example.com/white space" })
    assert.equal(2, rc)
    assert.equal("", out)
    assert.truthy(err:find("URL #1 does not start with http:// or https://", 1, true), err)
    assert.truthy(err:find("URL #2 ", 1, true), err)
    assert.truthy(err:find("0 of 2 URLs purged (0 tasks, 0 requests", 1, true), err)
    assert.equal(before, s:stats().requests)
  end)

  it("missing credentials: exit 2", function()
    local _, err, rc = cli(nil, { "https://www.example.com/a" })
    assert.equal(2, rc)
    assert.truthy(err:find("ClientError.CredentialError", 1, true))
  end)

  it("--help exits 0 and runs directly from the tree", function()
    local out, rc = proc.run("bin/ecdn-purge --help")
    assert.equal(0, rc)
    assert.truthy(out:find("usage: ecdn-purge", 1, true))
  end)
end)

describe("ecdn-purge and Ctrl-C", function()
  -- The simulator holds the answer for a minute; SIGINT must end the CLI
  -- long before that, with exit 130 and a word on the uncertain outcome.
  -- (No timing is asserted: a CLI that waited would be killed by `timeout`
  -- after 20 s and exit 124.)
  it("ends the request in flight: exit 130, says it may or may not have been applied", function()
    local s = sim.start { args = { "--rate", "0", "--delay-ms", "60000" } }
    finally(function() s:stop() end)
    local base = proc.tmpname()
    local script = "env -u TENCENTCLOUD_SESSION_TOKEN TENCENTCLOUD_SECRET_ID=" .. proc.quote(s.secret_id)
      .. " TENCENTCLOUD_SECRET_KEY=" .. proc.quote(s.secret_key) .. " timeout -s KILL 20 " .. proc.lua
      .. " bin/ecdn-purge --timeout 120 --endpoint " .. s.url .. " https://www.example.com/ctrl-c"
      .. " </dev/null 2>" .. base .. ".err & p=$!;"
      .. " echo $p >" .. base .. ".tmp; mv " .. base .. ".tmp " .. base .. ".pid;"
      .. " wait $p; echo $? >" .. base .. ".tmp; mv " .. base .. ".tmp " .. base .. ".rc"
    proc.spawn("sh -c " .. proc.quote(script))
    -- The request is in flight once the simulator has read it.
    local deadline = os.time() + 20
    while s:stats().requests < 1 and os.time() < deadline do os.execute("sleep 0.02") end
    assert.equal(1, s:stats().requests)
    local pid = assert(tonumber(proc.wait_file(base .. ".pid", 10)))
    -- `timeout` runs the CLI as its child: signal the CLI itself.
    local child = assert(tonumber((proc.run("pgrep -P " .. pid))))
    os.execute("kill -INT " .. child)
    local rc = tonumber(proc.wait_file(base .. ".rc", 30))
    local f = assert(io.open(base .. ".err"))
    local err = f:read("*a")
    f:close()
    os.remove(base .. ".pid")
    os.remove(base .. ".rc")
    os.remove(base .. ".err")
    assert.equal(130, rc)
    assert.truthy(err:find("interrupted; the request in flight may or may not have been applied", 1, true), err)
  end)
end)
