rockspec_format = "3.0"
package = "lua-ecdn-sim"
version = "scm-1"
source = {
  url = "git+https://example.invalid/lua-ecdn.git",
}
description = {
  summary = "A local simulator of the Tencent Cloud ECDN/CDN purge API, for offline tests",
  detailed = [[
    ecdn-sim serves PurgeUrlsCache, PurgePathCache, DescribePurgeTasks and
    DescribePurgeQuota (ECDN and CDN), and PushUrlsCache, DescribePushTasks and
    DescribePushQuota (CDN) over API 3.0 on 127.0.0.1, verifies TC3-HMAC-SHA256
    and signature V1 with its own code (raw HMAC/SHA from luaossl), enforces
    batch limits, per-area quotas, a sliding rate limit, domains and migrated
    accounts, injects seeded faults and task failures, dates every answer
    from its (optionally fake) clock and logs every accepted URL.
    Independent of lua-ecdn (the client): it tests any client.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4",
  "cqueues",
  "luasocket",
  "luaossl",
  "lua-cjson",
}
-- Pure Lua: build type "none" installs exactly the files listed below
-- ("builtin" would also copy the whole lua/ directory, the client included).
build = {
  type = "none",
  install = {
    lua = {
      -- Lua modules (generated)
      ["ecdn.sim"] = "lua/ecdn/sim/init.lua",
      ["ecdn.sim.auth"] = "lua/ecdn/sim/auth.lua",
      ["ecdn.sim.faults"] = "lua/ecdn/sim/faults.lua",
      ["ecdn.sim.form"] = "lua/ecdn/sim/form.lua",
      ["ecdn.sim.json"] = "lua/ecdn/sim/json.lua",
      ["ecdn.sim.log"] = "lua/ecdn/sim/log.lua",
      ["ecdn.sim.random"] = "lua/ecdn/sim/random.lua",
      ["ecdn.sim.server"] = "lua/ecdn/sim/server.lua",
      ["ecdn.sim.service"] = "lua/ecdn/sim/service.lua",
    },
    bin = {
      ["ecdn-sim"] = "bin/ecdn-sim",
    },
  },
}
