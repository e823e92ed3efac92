-- ecdn.sim's exported defaults and command-line parsing (pure; loads on LuaJIT too).
local simmod = require "ecdn.sim"

describe("ecdn.sim options", function()
  it("exports the documented default credentials", function()
    assert.matches("^AKID%w+$", simmod.DEFAULT_SECRET_ID)
    assert.equal(36, #simmod.DEFAULT_SECRET_ID)
    assert.equal(32, #simmod.DEFAULT_SECRET_KEY)
    assert.truthy(simmod.USAGE:find(simmod.DEFAULT_SECRET_ID, 1, true))
    assert.truthy(simmod.USAGE:find(simmod.DEFAULT_SECRET_KEY, 1, true))
  end)

  it("has the issue's defaults and uses the default pair without --secret", function()
    local cfg = assert(simmod.options {})
    assert.equal(0, cfg.port)
    assert.equal(20, cfg.rate)
    assert.equal(1000, cfg.batch)
    assert.equal(10000, cfg.quota)
    assert.equal(1024, cfg.url_max)
    assert.equal(2000, cfg.task_ms)
    assert.equal("sliding", cfg.rate_window)
    assert.equal(0, cfg.task_fail_rate)
    assert.equal(500, cfg.push_batch)
    assert.equal(1000, cfg.push_quota)
    assert.same({}, cfg.migrated)
    assert.is_nil(cfg.domains)
    assert.same({ [simmod.DEFAULT_SECRET_ID] = simmod.DEFAULT_SECRET_KEY }, cfg.secrets)
  end)

  it("parses repeatable credentials, tokens, domains and --name=value", function()
    local cfg = assert(simmod.options { "--secret", "AKIDA:key:with:colons", "--secret=AKIDB:kb",
                                        "--token", "AKIDB:tok", "--domains", "A.com, b.com", "--rate=0",
                                        "--fail-rate", "0.25", "--seed", "9" })
    assert.same({ AKIDA = "key:with:colons", AKIDB = "kb" }, cfg.secrets)
    assert.same({ AKIDB = "tok" }, cfg.tokens)
    assert.same({ ["a.com"] = true, ["b.com"] = true }, cfg.domains)
    assert.equal(0, cfg.rate)
    assert.equal(0.25, cfg.fail_rate)
    assert.equal(9, cfg.seed)
  end)

  it("parses --rate-window, --migrated (repeatable, known SecretIds only), --task-fail-rate, push limits", function()
    local cfg = assert(simmod.options { "--rate-window", "fixed", "--secret", "AKIDA:ka", "--secret", "AKIDB:kb",
                                        "--migrated", "AKIDA", "--migrated=AKIDB", "--task-fail-rate", "0.125",
                                        "--push-batch", "7", "--push-quota", "0" })
    assert.equal("fixed", cfg.rate_window)
    assert.same({ AKIDA = true, AKIDB = true }, cfg.migrated)
    assert.equal(0.125, cfg.task_fail_rate)
    assert.equal(7, cfg.push_batch)
    assert.equal(0, cfg.push_quota)
    -- without --secret, the default SecretId may be marked migrated
    cfg = assert(simmod.options { "--migrated", simmod.DEFAULT_SECRET_ID })
    assert.same({ [simmod.DEFAULT_SECRET_ID] = true }, cfg.migrated)
    assert.equal("sliding", assert(simmod.options { "--rate-window", "sliding" }).rate_window)
  end)

  it("refuses bad values with a message", function()
    for _, args in ipairs {
      { "--rate", "-1" }, { "--port", "70000" }, { "--batch", "0" }, { "--drop-rate", "1.5" },
      { "--secret", "nokey" }, { "--token", "AKIDX:t" }, { "--port" }, { "stray" }, { "--nope", "1" },
      { "--rate-window", "rolling" }, { "--migrated", "AKIDUNKNOWN" }, { "--migrated", "" },
      { "--task-fail-rate", "-0.1" }, { "--push-batch", "0" }, { "--push-quota", "-1" },
    } do
      local cfg, err = simmod.options(args)
      assert.is_nil(cfg, table.concat(args, " "))
      assert.is_string(err)
    end
    assert.equal("help", simmod.options { "--help" })
  end)
end)
