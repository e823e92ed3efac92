-- sign_tc3 and sign_v1 against an independent implementation: the algorithm
-- written out again in Lua, with the openssl command line doing the hashing.
local core = require "ecdn.core"

local openssl = require "support.openssl"
local hmac = openssl.hmac

local function rand_bytes(n, alphabet)
  local t = {}
  for i = 1, n do
    if alphabet then
      local k = math.random(#alphabet)
      t[i] = alphabet:sub(k, k)
    else
      t[i] = string.char(math.random(0, 255))
    end
  end
  return table.concat(t)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for j = 1, 4 do
      local v = math.floor(n / 64 ^ (4 - j)) % 64
      chars[j] = B64:sub(v + 1, v + 1)
    end
    if not b then chars[3], chars[4] = "=", "=" elseif not c then chars[4] = "=" end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

local ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
local UNICODE = { "未命名", "é", "😀", "\\u672a", '"', "\\", "%", " ", "\t", "x" }

local function rand_payload()
  local t = {}
  for i = 1, math.random(0, 40) do t[i] = UNICODE[math.random(#UNICODE)] end
  return '{"Urls": ["https://a.com/' .. table.concat(t) .. '"]}'
end

local reference_tc3 = openssl.tc3

describe("signers agree with an independent implementation", function()

  it("sign_tc3 on 60 random requests", function()
    math.randomseed(20261127)
    for _ = 1, 60 do
      local day = math.random(0, 20000) * 86400
      local q = {
        secret_id = "AKID" .. rand_bytes(math.random(1, 36), ALNUM),
        secret_key = rand_bytes(math.random(1, 64)),          -- any bytes, NUL included
        service = rand_bytes(math.random(1, 8), "abcdefghijklmnopqrstuvwxyz"),
        host = rand_bytes(math.random(1, 10), "abcdefghijklmnopqrstuvwxyz") .. ".tencentcloudapi.com",
        action = ({ "PurgeUrlsCache", "DescribePurgeTasks", "PurgePathCache" })[math.random(3)],
        version = ({ "2019-10-12", "2018-06-06" })[math.random(2)],
        timestamp = day + ({ 0, 86399, math.random(0, 86399) })[math.random(3)],
        payload = rand_payload(),
        sign_action = math.random() < 0.5,
        content_type = ({ nil, "application/json", "application/json; charset=utf-8" })[math.random(3)],
        token = math.random() < 0.5 and rand_bytes(40, ALNUM) or nil,
        region = math.random() < 0.5 and "ap-guangzhou" or nil,
      }
      local got, want = core.sign_tc3(q), reference_tc3(q)
      for _, k in ipairs{ "canonical_request", "string_to_sign", "signature", "authorization" } do
        assert.are.equal(want[k], got[k])
      end
      assert.are.equal(q.token, got.headers["X-TC-Token"])
      assert.are.equal(q.region, got.headers["X-TC-Region"])
    end
  end)

  it("sign_v1 on 40 random requests", function()
    math.randomseed(7)
    for _ = 1, 40 do
      local params, names = {}, {}
      for i = 1, math.random(0, 12) do
        local name = "Urls." .. (i - 1)
        params[name] = "https://a.com/" .. rand_bytes(math.random(0, 30))
      end
      local q = {
        secret_id = "AKID" .. rand_bytes(20, ALNUM), secret_key = rand_bytes(math.random(1, 50)),
        host = "ecdn.tencentcloudapi.com", action = "PurgeUrlsCache", version = "2019-10-12",
        timestamp = math.random(0, 2 ^ 31 - 1), nonce = math.random(1, 2 ^ 31 - 1), params = params,
        method = ({ "GET", "POST" })[math.random(2)],
        signature_method = ({ nil, "HmacSHA1", "HmacSHA256" })[math.random(3)],
      }
      local all = { Action = q.action, Nonce = tostring(q.nonce), SecretId = q.secret_id,
                    Timestamp = tostring(q.timestamp), Version = q.version, SignatureMethod = q.signature_method }
      for k, v in pairs(params) do all[k] = v end
      for k in pairs(all) do names[#names + 1] = k end
      table.sort(names)
      local parts = {}
      for i, k in ipairs(names) do parts[i] = k .. "=" .. all[k] end
      local sts = q.method .. q.host .. "/?" .. table.concat(parts, "&")
      local alg = q.signature_method == "HmacSHA256" and "sha256" or "sha1"
      local got = core.sign_v1(q)
      assert.are.equal(sts, got.string_to_sign)
      assert.are.equal(base64(hmac(alg, q.secret_key, sts)), got.signature)
    end
  end)
end)
