rockspec_format = "3.0"
package = "lua-ecdn"
version = "scm-1"
source = {
  url = "git+https://example.invalid/lua-ecdn.git",
}
description = {
  summary = "Purge cached URLs on Tencent Cloud ECDN/CDN: exact signing, no lost URLs, fast",
  detailed = [[
    A C module (TC3-HMAC-SHA256 and v1 signers on OpenSSL, an HTTP core on libcurl)
    with a thin Lua layer and the ecdn-purge command. The local simulator of the
    purge service is its own rock, lua-ecdn-sim.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson",
}
external_dependencies = {
  CURL = { header = "curl/curl.h" },
  OPENSSL = { header = "openssl/evp.h" },
}
build = {
  type = "builtin",
  modules = {
    ["ecdn.core"] = {
      sources = {
        "src/answer.c", "src/buf.c", "src/core.c", "src/http.c",
        "src/json.c", "src/lua_answer.c", "src/lua_client.c", "src/lua_http.c",
        "src/lua_request.c", "src/lua_sign.c", "src/lua_util.c", "src/purge.c",
        "src/sign.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
      libraries = { "curl", "crypto" },
    },
    -- Lua modules (generated)
    ["ecdn"] = "lua/ecdn/init.lua",
    ["ecdn.bootstrap"] = "lua/ecdn/bootstrap.lua",
    ["ecdn.bulk"] = "lua/ecdn/bulk.lua",
    ["ecdn.client"] = "lua/ecdn/client.lua",
    ["ecdn.credentials"] = "lua/ecdn/credentials.lua",
    ["ecdn.decode"] = "lua/ecdn/decode.lua",
    ["ecdn.endpoint"] = "lua/ecdn/endpoint.lua",
    ["ecdn.errors"] = "lua/ecdn/errors.lua",
    ["ecdn.limiter"] = "lua/ecdn/limiter.lua",
    ["ecdn.options"] = "lua/ecdn/options.lua",
    ["ecdn.request"] = "lua/ecdn/request.lua",
    ["ecdn.services"] = "lua/ecdn/services.lua",
    ["ecdn.signer"] = "lua/ecdn/signer.lua",
    ["ecdn.times"] = "lua/ecdn/times.lua",
    ["ecdn.v1"] = "lua/ecdn/v1.lua",
    ["resty.ecdn"] = "lua/resty/ecdn.lua",
    ["resty.ecdn.http"] = "lua/resty/ecdn/http.lua",
    ["resty.ecdn.limit"] = "lua/resty/ecdn/limit.lua",
  },
  install = {
    bin = {
      ["ecdn-purge"] = "bin/ecdn-purge",
    },
  },
}
