-- A client used, then fork(): the child must never touch the connection it
-- inherited (it reconnects), and parent and child both go on purging. Every
-- answer is checked against the simulator's log: a task id that belongs to
-- another request means two processes shared one connection.
local ecdn = require "ecdn"
local cjson = require "cjson"
local sim = require "support.sim"
local proc = require "support.proc"
local fork = require "support.fork"
local merged = require("support.tables").merged

local N = 200

local function client(s)
  return assert(ecdn.client { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, timeout = 10,
                               rate = 0 }) -- 200 purges in a row: no client-side rate limit
end

local read_file = proc.read_file

-- n one-URL purges of BASE-1 .. BASE-n; returns {url = task_id}, {url = error text}, the last attempts.
local function purge_many(c, base, n)
  local tasks, errors, attempts = {}, {}, {}
  for i = 1, n do
    local url = base .. "-" .. i
    local res, err = c:purge { url }
    if res then
      tasks[url] = res.task_id
      attempts[url] = res.attempts
    else
      errors[url] = tostring(err)
    end
  end
  return tasks, errors, attempts
end

-- Runs fn() in a forked child (fork.fork, or the given fork function) that
-- writes cjson.encode(fn()) to a file and _exits; returns the pid and the
-- file's path. Nothing of busted runs in the child.
local function spawn_child(fn, fork_fn)
  local out = proc.tmpname()
  io.stdout:flush()
  io.stderr:flush()
  local pid = assert((fork_fn or fork.fork)())
  if pid == 0 then
    local code = 1
    local ok, err = pcall(function()
      local result = fn()
      local f = assert(io.open(out .. ".tmp", "wb"))
      f:write(cjson.encode(result))
      f:close()
      assert(os.rename(out .. ".tmp", out))
      code = 0
    end)
    if not ok then
      local f = io.open(out .. ".err", "wb")
      if f then f:write(tostring(err)); f:close() end
    end
    fork._exit(code)
  end
  return pid, out
end

local function child_result(pid, out)
  local _, how, code = fork.wait(pid)
  local text, why = read_file(out), read_file(out .. ".err")
  os.remove(out)
  os.remove(out .. ".err")
  assert.equal("exited", how)
  assert.equal(0, code, "child failed: " .. tostring(why))
  return cjson.decode((assert(text)))
end

-- Every answer's task id must be the one the simulator gave the request that carried its URL.
local function check_against_log(s, tasks)
  local by_task, times_logged = {}, {}
  for _, e in ipairs(s:log_entries()) do
    by_task[e.task_id] = e
    for _, u in ipairs(e.urls) do times_logged[u] = (times_logged[u] or 0) + 1 end
  end
  local wrong = {}
  for url, task_id in pairs(tasks) do
    local e = by_task[task_id]
    if not e or #e.urls ~= 1 or e.urls[1] ~= url then
      wrong[#wrong + 1] = url .. " got " .. task_id .. " which is " .. (e and cjson.encode(e.urls) or "not logged")
    end
    if times_logged[url] ~= 1 then wrong[#wrong + 1] = url .. " logged " .. tostring(times_logged[url]) .. " times" end
  end
  assert.same({}, wrong)
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("fork", function()
  local s
  before_each(function() s = sim.start { args = { "--rate", "0", "--seed", "7" }, log = true } end)
  after_each(function() s:stop() end)

  it("parent and child each purge " .. N .. " URLs on their own connections; every answer is their own", function()
    local c = client(s)
    assert(c:purge { "https://www.example.com/fork/warm-up" }) -- the connection the child inherits
    local before = s:stats().connections
    assert.equal(1, before)

    local pid, out = spawn_child(function()
      local tasks, errors, attempts = purge_many(c, "https://www.example.com/fork/child", N)
      c:close()
      return { tasks = tasks, errors = errors, attempts = attempts }
    end)
    local tasks, errors, attempts = purge_many(c, "https://www.example.com/fork/parent", N)
    local child = child_result(pid, out)

    assert.same({}, errors)
    assert.same({}, child.errors)
    assert.equal(N, count(tasks))
    assert.equal(N, count(child.tasks))
    for url, n in pairs(attempts) do assert.equal(1, n, url) end
    for url, n in pairs(child.attempts) do assert.equal(1, n, url) end
    local all = merged(tasks, child.tasks) -- parent's and child's {url = task_id}
    assert.equal(2 * N, count(all))
    check_against_log(s, all)

    -- One new connection (the child's); the parent kept its own throughout.
    assert.equal(before + 1, s:stats().connections)
    -- The child has exited and closed its client: the parent goes on, on the same connection.
    local res, err = c:purge { "https://www.example.com/fork/after" }
    assert.is_nil(err)
    assert.equal(1, res.attempts)
    check_against_log(s, { ["https://www.example.com/fork/after"] = res.task_id })
    assert.equal(before + 1, s:stats().connections)
    c:close()
  end)

  it("a child that only closes the inherited client leaves the parent's connection alone", function()
    local c = client(s)
    assert(c:purge { "https://www.example.com/fork2/warm-up" })
    local before = s:stats().connections
    local pid, out = spawn_child(function()
      c:close()
      return { closed = true }
    end)
    assert.same({ closed = true }, child_result(pid, out))
    local res, err = c:purge { "https://www.example.com/fork2/after" }
    assert.is_nil(err)
    assert.equal(1, res.attempts)
    check_against_log(s, { ["https://www.example.com/fork2/after"] = res.task_id })
    assert.equal(before, s:stats().connections)
    c:close()
  end)

  it("a child that exits without closing (the client's __gc runs) leaves the parent alone", function()
    local c = client(s)
    assert(c:purge { "https://www.example.com/fork3/warm-up" })
    local before = s:stats().connections
    local pid, out = spawn_child(function()
      local res = assert(c:purge { "https://www.example.com/fork3/child" })
      c = nil -- luacheck: ignore (drop the child's reference so the collector frees it)
      collectgarbage()
      collectgarbage()
      return { task_id = res.task_id }
    end)
    local child = child_result(pid, out)
    check_against_log(s, { ["https://www.example.com/fork3/child"] = child.task_id })
    local res, err = c:purge { "https://www.example.com/fork3/after" }
    assert.is_nil(err)
    assert.equal(1, res.attempts)
    assert.equal(before + 1, s:stats().connections)
    c:close()
  end)
end)

-- Over TLS a close is not silent: OpenSSL sends close_notify. A child that
-- closed the inherited session would end the parent's connection.
describe("fork without pthread_atfork handlers (_Fork)", function()
  local s
  before_each(function() s = sim.start { args = { "--rate", "0", "--seed", "7" }, log = true } end)
  after_each(function() s:stop() end)

  -- A child of _Fork() runs no fork handlers: the pid check made before
  -- every request must not rest on one (a pid cached and re-read by an
  -- atfork handler would let this child use the parent's connection).
  it("the child still connects anew, and every answer is its own", function()
    local probe, why = fork.raw_fork()
    if probe == 0 then fork._exit(0) end
    if not probe then return pending("no _Fork on this system: " .. tostring(why)) end
    fork.wait(probe)
    local c = client(s)
    assert(c:purge { "https://www.example.com/rawfork/warm-up" })
    local before = s:stats().connections
    local n = 50
    local pid, out = spawn_child(function()
      local tasks, errors = purge_many(c, "https://www.example.com/rawfork/child", n)
      c:close()
      return { tasks = tasks, errors = errors }
    end, fork.raw_fork)
    local tasks, errors = purge_many(c, "https://www.example.com/rawfork/parent", n)
    local child = child_result(pid, out)
    assert.same({}, errors)
    assert.same({}, child.errors)
    local all = merged(tasks, child.tasks) -- parent's and child's {url = task_id}
    assert.equal(2 * n, count(all))
    check_against_log(s, all)
    assert.equal(before + 1, s:stats().connections)
    c:close()
  end)
end)

describe("fork over a kept-alive TLS connection", function()
  local cert, key, pid, endpoint

  setup(function()
    cert, key = proc.self_signed()
    local port_file = proc.tmpname()
    pid = proc.spawn("lua5.4 spec/support/tls_keepalive_server.lua " .. cert .. " " .. key .. " " .. port_file)
    local port = tonumber(proc.wait_file(port_file, 10))
    os.remove(port_file)
    assert(port, "TLS server did not start")
    endpoint = "https://127.0.0.1:" .. port
  end)

  teardown(function()
    proc.kill(pid)
    os.remove(cert)
    os.remove(key)
  end)

  -- The server's TaskIds are "tls-c<connection>-r<request>".
  local function connection_of(res)
    return tonumber(res.task_id:match("^tls%-c(%d+)%-r%d+$"))
  end

  local function tls_client()
    return assert(ecdn.client { secret_id = "AKIDforkspec", secret_key = "fork-spec-key", endpoint = endpoint,
                                cafile = cert, timeout = 10 })
  end

  it("a child that closes the inherited client does not end the parent's TLS session", function()
    local c = tls_client()
    local first = assert(c:purge { "https://www.example.com/tls/1" })
    local pid_child, out = spawn_child(function()
      c:close()
      return { closed = true }
    end)
    assert.same({ closed = true }, child_result(pid_child, out))
    for i = 2, 4 do
      local res, err = c:purge { "https://www.example.com/tls/" .. i }
      assert.is_nil(err, tostring(err))
      assert.equal(1, res.attempts)
      assert.equal(connection_of(first), connection_of(res), res.task_id)
    end
    c:close()
  end)

  it("a child that purges on its own session, then closes, leaves the parent's session alone", function()
    local c = tls_client()
    local first = assert(c:purge { "https://www.example.com/tls2/1" })
    local pid_child, out = spawn_child(function()
      local tasks = {}
      for i = 1, 20 do tasks[i] = assert(c:purge { "https://www.example.com/tls2/child-" .. i }).task_id end
      c:close()
      return tasks
    end)
    local mine = {}
    for i = 1, 20 do
      local res, err = c:purge { "https://www.example.com/tls2/parent-" .. i }
      assert.is_nil(err, tostring(err))
      mine[i] = res.task_id
    end
    local theirs = child_result(pid_child, out)
    assert.equal(20, #theirs)
    local child_conn = connection_of { task_id = theirs[1] }
    assert.are_not.equal(connection_of(first), child_conn)
    for i = 1, 20 do
      assert.equal(("tls-c%d-r%d"):format(child_conn, i), theirs[i])
      assert.equal(("tls-c%d-r%d"):format(connection_of(first), i + 1), mine[i])
    end
    local res = assert(c:purge { "https://www.example.com/tls2/after" })
    assert.equal(("tls-c%d-r%d"):format(connection_of(first), 22), res.task_id)
    c:close()
  end)
end)
