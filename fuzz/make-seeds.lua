-- Regenerates the hand-written seeds under fuzz/corpus/ (run from the repository root):
--   lua5.4 fuzz/make-seeds.lua
-- Each field is one length byte then its bytes (see fuzz/fuzz_input.h).
local function field(s) assert(#s < 256); return string.char(#s) .. s end
local function i64(v) return string.pack(">i8", v) end
local function write(target, name, bytes)
  local h = assert(io.open("fuzz/corpus/" .. target .. "/" .. name, "wb"))
  h:write(bytes)
  h:close()
end

-- fuzz_tc3: flags, timestamp, 10 fields, payload = rest.
do
  local P1 = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
  local function seed(name, flags, ts, f, payload)
    local t = { string.char(flags), i64(ts) }
    for i = 1, 10 do t[#t + 1] = field(f[i] or "") end
    t[#t + 1] = payload
    write("fuzz_tc3", name, table.concat(t))
  end
  local A = { "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm",
    "cvm.tencentcloudapi.com", "DescribeInstances", "2017-03-12", "ap-guangzhou", "", "",
    "application/json; charset=utf-8" }
  seed("vector-a", 0x12, 1551113065, A, P1)
  seed("vector-c-sign-action", 0x13, 1551113065, { "AKID" .. ("*"):rep(32), ("*"):rep(32), "cvm",
    "cvm.tencentcloudapi.com", "DescribeInstances", "2017-03-12", "ap-guangzhou", "", "",
    "application/json; charset=utf-8" }, P1)
  seed("purge-all-optional", 0x1f, 1700000000, { "AKIDtest", "key\0with\0nul", "ecdn", "ecdn.tencentcloudapi.com",
    "PurgeUrlsCache", "2019-10-12", "", "tok/+=", "en-US", "application/json" },
    '{"Urls":["https://www.example.com/a b\\"\\\\%"]}')
  seed("host-crlf", 0x00, 0, { "id", "k", "ecdn", "h\r\nX-Evil: 1", "A", "v" }, "")
  seed("empty-action", 0x00, 1, { "id", "k", "ecdn", "h", "", "v" }, "")
  seed("timestamp-negative", 0x40, -1, A, "")
  seed("timestamp-max", 0x40, 253402300799, A, "{}")
  seed("payload-null", 0x20, 86400 * 365, A, "ignored")
  seed("utf8-binary-fields", 0x0e, 951782400, { "\xe6\x9c\xaa", "\xff\xfe", "\xc0\x80", "h\0", "\x7f", "1" }, "\0\1\2")
end

-- fuzz_v1: flags, timestamp, nonce, 10 fields, then name/value pairs.
do
  local function seed(name, flags, ts, nonce, f, params)
    local t = { string.char(flags), i64(ts), i64(nonce) }
    for i = 1, 10 do t[#t + 1] = field(f[i] or "") end
    for _, p in ipairs(params) do t[#t + 1] = field(p[1]) .. field(p[2]) end
    write("fuzz_v1", name, table.concat(t))
  end
  local doc = { "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm.tencentcloudapi.com",
    "DescribeInstances", "2017-03-12", "GET", "/", "ap-guangzhou", "", "HmacSHA256" }
  local P = { { "InstanceIds.0", "ins-09dx96dg" }, { "Limit", "20" }, { "Offset", "0" } }
  seed("doc-example-sha1", 0x04, 1465185768, 11886, doc, P)
  seed("doc-example-sha256", 0x14, 1465185768, 11886, doc, P)
  seed("post-token-path", 0x0b, 1700000000, 1, { "id", "k", "cdn.tencentcloudapi.com", "PurgeUrlsCache", "2018-06-06",
    "POST", "/v1/", "", "tok en+/=", "" }, { { "Urls.0", "https://a.com/ä b?x=1&y=%20" }, { "Urls.1", "" } })
  seed("duplicate-param", 0x00, 1, 1, doc, { { "Action", "x" } })
  seed("sort-order", 0x00, 2, 2, doc, { { "InstanceIds.2", "b" }, { "InstanceIds.12", "a" }, { "\xff", "\0" } })
  seed("bad-method", 0x01, 3, 3, { "id", "k", "h", "A", "v", "PUT" }, {})
  seed("nonce-zero", 0x80, 4, 0, doc, {})
  seed("host-newline", 0x00, 5, 5, { "id", "k", "h\n", "A", "v" }, {})
end

-- fuzz_purge: a list of URLs.
do
  local function seed(name, urls)
    local t = {}
    for i, u in ipairs(urls) do t[i] = field(u) end
    write("fuzz_purge", name, table.concat(t))
  end
  seed("two-urls", { "https://www.example.com/a.jpg", "http://www.example.com/b.css?v=1" })
  seed("unicode-quotes-percent", { "https://例子.com/未命名 ", "https://a.com/\"q\"\\%20%" , "https://a.com/é?x=\u{1F600}" })
  seed("wildcard", { "https://*.example.com/a" })
  seed("no-host", { "https:///path" })
  seed("scheme", { "ftp://a.com/" , "HTTP://A.COM/" })
  seed("nbsp", { "https://a.com/\u{A0}x" })
  seed("c1-control", { "https://a.com/\u{85}", "https://a.com/\u{9F}" , "https://a.com/\x7f" })
  seed("tab-crlf", { "https://a.com/\t", "https://a.com/\r\n" })
  seed("invalid-utf8", { "https://a.com/\xff", "https://a.com/\xed\xa0\x80" })
  seed("nul", { "https://a.com/\0" })
  seed("empty-string", { "" })
  write("fuzz_purge", "empty-list", "")
end
