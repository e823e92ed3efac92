-- bin/ecdn-purge: where URLs come from (arguments, -f FILE, -f -, stdin),
-- how lines are read, and --dry-run (the engine's checks and batches, nothing sent).
local sim = require "support.sim"
local cli = require "support.cli"
local with = cli.args


local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

describe("ecdn-purge input", function()
  local s
  before_each(function() s = sim.start { args = { "--rate", "0" }, log = true } end)
  after_each(function() s:stop() end)

  it("-f FILE: one URL per line; blank lines, # comments, CR and surrounding blanks skipped", function()
    local path = cli.file("# deploy 42\n\nhttps://www.example.com/a\r\n  https://www.example.com/b \t\n"
                          .. "   # indented comment\nhttps://www.example.com/c#frag\n")
    finally(function() os.remove(path) end)
    local out, err, rc = cli.run(s, { "-f", path })
    assert.equal(0, rc, err)
    assert.equal(1, #cli.lines(out))
    assert.same({ "https://www.example.com/a", "https://www.example.com/b", "https://www.example.com/c#frag" },
                s:logged_urls())
  end)

  it("a UTF-8 byte-order mark before a file's first line is not part of it (URL or # comment)", function()
    local path = cli.file("\239\187\191https://www.example.com/a\nhttps://www.example.com/b\n")
    local commented = cli.file("\239\187\191# deploy 42\r\nhttps://www.example.com/c\r\n")
    finally(function() os.remove(path) os.remove(commented) end)
    local _, err, rc = cli.run(s, { "-f", path, "-f", commented })
    assert.equal(0, rc, err)
    assert.same({ "https://www.example.com/a", "https://www.example.com/b", "https://www.example.com/c" },
                s:logged_urls())
    _, err, rc = cli.run(s, { "-f", "-" }, { stdin = "\239\187\191https://www.example.com/d\n" })
    assert.equal(0, rc, err)
    assert.equal("https://www.example.com/d", s:logged_urls()[4])
  end)

  it("-f - reads stdin; --file=FILE works too; sources are read in the order given, arguments included", function()
    local path = cli.file("https://www.example.com/from-file\n")
    finally(function() os.remove(path) end)
    local _, err, rc = cli.run(s, { "--batch", "10", "https://www.example.com/arg1", "-f", "-",
                                    "--file=" .. path, "https://www.example.com/arg2" },
                               { stdin = "https://www.example.com/from-stdin\n" })
    assert.equal(0, rc, err)
    assert.same({ "https://www.example.com/arg1", "https://www.example.com/from-stdin",
                  "https://www.example.com/from-file", "https://www.example.com/arg2" }, s:logged_urls())
  end)

  it("stdin is read only when there are no URL arguments and no -f", function()
    local _, err, rc = cli.run(s, { "https://www.example.com/arg" }, { stdin = "https://www.example.com/ignored\n" })
    assert.equal(0, rc, err)
    assert.same({ "https://www.example.com/arg" }, s:logged_urls())
    _, err, rc = cli.run(s, {}, { stdin = "# only a comment\nhttps://www.example.com/stdin\n" })
    assert.equal(0, rc, err)
    assert.same({ "https://www.example.com/arg", "https://www.example.com/stdin" }, s:logged_urls())
  end)

  it("an invalid URL read from a file is named by file and line", function()
    local path = cli.file("# header\nhttps://www.example.com/ok\n\nftp://www.example.com/bad\n")
    finally(function() os.remove(path) end)
    local _, err, rc = cli.run(s, { "-f", path })
    assert.equal(1, rc)
    local lines = cli.lines(err)
    assert.equal("ecdn-purge: " .. path .. ":4: ClientError.InvalidParameter: URL #2 does not start with "
                 .. "http:// or https://", lines[1])
    _, err, rc = cli.run(s, { "-f", "-" }, { stdin = "https://www.example.com/ok\nhttps://www.example.com/a b\n" })
    assert.equal(1, rc)
    assert.matches("^ecdn%-purge: stdin:2: ClientError%.InvalidParameter: URL #2 ", err)
  end)

  it("names at most 10 invalid URLs one by one, then counts the rest", function()
    local text = {}
    for i = 1, 13 do text[#text + 1] = "bad-" .. i end
    local _, err, rc = cli.run(s, { "-f", "-" }, { stdin = table.concat(text, "\n") .. "\n" })
    assert.equal(2, rc)
    local lines = cli.lines(err)
    assert.equal(12, #lines, err)
    assert.equal("ecdn-purge: ... and 3 more invalid URLs (--failed FILE lists them all)", lines[11])
    assert.matches("^ecdn%-purge: 0 of 13 URLs purged .*13 ClientError%.InvalidParameter", lines[12])
  end)

  it("usage: no URLs at all, an unreadable -f, -f without a value: exit 2, nothing sent", function()
    local _, err, rc = cli.run(s, {}, { stdin = "\n# nothing\n" })
    assert.equal(2, rc)
    assert.truthy(err:find("no URLs given", 1, true))
    _, err, rc = cli.run(s, { "-f", "/nonexistent/urls.txt" })
    assert.equal(2, rc)
    assert.truthy(err:find("/nonexistent/urls.txt", 1, true))
    _, err, rc = cli.run(s, { "-f" })
    assert.equal(2, rc)
    assert.truthy(err:find("-f needs a value", 1, true))
    assert.equal(0, s:stats().requests)
  end)

  it("-- ends the options: what follows is a URL even if it starts with -", function()
    local _, err, rc = cli.run(s, { "--", "--json" })
    assert.equal(2, rc) -- the one URL, "--json", is invalid: nothing sent
    assert.truthy(err:find("URL #1 does not start with http:// or https://", 1, true), err)
  end)
end)

describe("ecdn-purge --dry-run", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0" }, log = true } end)
  teardown(function() s:stop() end)

  it("checks, dedupes and prints the batches; sends nothing and needs no credentials", function()
    local before = s:stats().requests
    -- No credentials at all (cli.run with nil): a dry run never makes a client.
    local out, err, rc = cli.run(nil, { "--dry-run", "--batch", "2", "--endpoint", s.url,
      "https://www.example.com/1", "https://www.example.com/2", "https://www.example.com/1",
      "https://www.example.com/3", "nope", "https://*.example.com/wild" })
    assert.equal(1, rc) -- some would not be purged
    assert.equal("# batch 1 of 2: 2 URLs\nhttps://www.example.com/1\nhttps://www.example.com/2\n"
                 .. "# batch 2 of 2: 1 URL\nhttps://www.example.com/3\n", out)
    local lines = cli.lines(err)
    assert.equal(3, #lines, err)
    assert.equal("ecdn-purge: ClientError.InvalidParameter: URL #5 does not start with http:// or https://", lines[1])
    assert.matches("^ecdn%-purge: InvalidParameter%.EcdnPurgeWildcardNotAllowed: URL #6 ", lines[2])
    assert.matches("^ecdn%-purge: dry run, nothing sent: 3 URLs would go in 2 requests of up to 2; 2 invalid: "
                   .. "1 ClientError%.InvalidParameter %(.-%), 1 InvalidParameter%.EcdnPurgeWildcardNotAllowed %(.-%); "
                   .. "1 repeated URL skipped$", lines[3])
    assert.equal(before, s:stats().requests)
    assert.equal(0, #s:log_entries())
  end)

  it("uses the engine's own URL checks (the same verdicts as a real run)", function()
    local bad = { "https://@/x", "https://:80/x", "https://www.example.com/a b", "https://www.example.com/\1",
                  "https://www.example.com/\255", "http:/www.example.com/x" }
    local args = { "--dry-run", "--json" }
    for _, u in ipairs(bad) do args[#args + 1] = u end
    local out, err0, rc = cli.run(nil, args)
    assert.equal(2, rc) -- every URL invalid
    local dry = cli.json(out, err0)
    -- Now for real, against the simulator: the engine refuses the same URLs, with the same codes.
    args[1] = "--retries"
    table.insert(args, 2, "0")
    local out2, err2, rc2 = cli.run(s, args)
    assert.equal(2, rc2)
    local real = cli.json(out2, err2)
    assert.equal(#bad, #dry.errors)
    assert.equal(#bad, #real.errors)
    for i = 1, #bad do
      assert.equal(real.errors[i].code, dry.errors[i].code)
      assert.equal(real.errors[i].message, dry.errors[i].message)
      assert.same(real.errors[i].urls, dry.errors[i].urls)
    end
    assert.equal(0, #s:log_entries())
  end)

  it("--json: the batches in full, the errors, the counts", function()
    local out, err, rc = cli.run(nil, { "--dry-run", "--json", "--batch", "1",
      "https://www.example.com/1", "https://www.example.com/1", "https://www.example.com/2" })
    assert.equal(0, rc, err)
    local doc = cli.json(out, err)
    assert.is_true(doc.dry_run)
    assert.same({ { "https://www.example.com/1" }, { "https://www.example.com/2" } }, doc.batches)
    assert.equal(2, doc.valid)
    assert.equal(2, doc.requests)
    assert.equal(1, doc.deduped)
    assert.equal(0, doc.failed)
    assert.same({}, doc.errors)
  end)

  it("its output is a valid -f file: the same URLs, deduped, go out in a real run", function()
    local path = cli.file("https://www.example.com/x\nhttps://www.example.com/y\nhttps://www.example.com/x\n")
    local clean = path .. ".clean"
    finally(function() os.remove(path) os.remove(clean) end)
    local out, _, rc = cli.run(nil, { "--dry-run", "-f", path })
    assert.equal(0, rc)
    local f = assert(io.open(clean, "wb"))
    f:write(out)
    f:close()
    local before = #s:logged_urls()
    local _, err
    _, err, rc = cli.run(s, { "-f", clean })
    assert.equal(0, rc, err)
    local all = s:logged_urls()
    assert.same({ "https://www.example.com/x", "https://www.example.com/y" },
                sorted { all[before + 1], all[before + 2] })
    assert.equal(before + 2, #all)
  end)

  it("a repeated invalid URL is refused once and then skipped as a repeat, as the real run does", function()
    local input = { "ftp://x", "ftp://x", "https://www.example.com/a" }
    local out, err, rc = cli.run(nil, with(input, "--dry-run", "--json"))
    assert.equal(1, rc)
    local dry = cli.json(out, err)
    local server = sim.start { args = { "--rate", "0" } }
    finally(function() server:stop() end)
    out, err, rc = cli.run(server, with(input, "--json"))
    assert.equal(1, rc)
    local real = cli.json(out, err)
    assert.equal(1, dry.failed)
    assert.equal(1, dry.deduped)
    assert.equal(1, #dry.errors)
    assert.equal(real.failed, dry.failed)
    assert.equal(real.deduped, dry.deduped)
    assert.equal(#real.errors, #dry.errors)
  end)

  it("every URL invalid: exit 2; all valid: exit 0", function()
    local _, _, rc = cli.run(nil, { "--dry-run", "nope" })
    assert.equal(2, rc)
    _, _, rc = cli.run(nil, { "--dry-run", "https://www.example.com/" })
    assert.equal(0, rc)
  end)
end)
