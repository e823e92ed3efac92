-- bin/ecdn-purge: output and exit codes (0 ok, 1 API/network, 2 usage).
local cjson = require "cjson"
local sim = require "support.sim"
local proc = require "support.proc"

-- Runs the CLI with this spec's interpreter; returns stdout, stderr, exit code.
local function cli(s, args, opts)
  opts = opts or {}
  local err_file = proc.tmpname()
  local env = "env -u TENCENTCLOUD_SESSION_TOKEN"
  if s then
    env = env .. " TENCENTCLOUD_SECRET_ID=" .. proc.quote(opts.id or s.secret_id)
      .. " TENCENTCLOUD_SECRET_KEY=" .. proc.quote(opts.key or s.secret_key)
  else
    env = env .. " -u TENCENTCLOUD_SECRET_ID -u TENCENTCLOUD_SECRET_KEY"
  end
  local cmd = env .. " " .. proc.lua .. " bin/ecdn-purge"
  if s and not opts.no_endpoint then cmd = cmd .. " --endpoint " .. s.url end
  for _, a in ipairs(args) do cmd = cmd .. " " .. proc.quote(a) end
  if opts.stdin then
    cmd = "printf '%s' " .. proc.quote(opts.stdin) .. " | " .. cmd
  else
    cmd = cmd .. " </dev/null"
  end
  local out, rc = proc.run(cmd .. " 2>" .. err_file)
  local f = assert(io.open(err_file))
  local err = f:read("*a")
  f:close()
  os.remove(err_file)
  return out, err, rc
end

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
    assert.equal("", err)
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
    assert.is_string(doc.task_id)
    assert.is_string(doc.request_id)
    assert.truthy(logged(s, doc.task_id))
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
    local out, err, rc = cli(s, { "--endpoint", "http://127.0.0.1:" .. proc.closed_port(),
                                  "https://www.example.com/a.jpg" }, { no_endpoint = true })
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("^ecdn%-purge: ClientError%.NetworkError: [^\n]+\n$", err)
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

  it("an invalid URL is refused before sending: exit 2", function()
    local before = #s:log_entries()
    local _, err, rc = cli(s, { "https://www.example.com/ok", "www.example.com/no-scheme" })
    assert.equal(2, rc)
    assert.matches("^ecdn%-purge: ClientError%.InvalidParameter: URL #2 [^\n]+\n$", err)
    assert.equal(before, #s:log_entries())
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
