-- credentials.profile: the INI file the official SDKs read, from temp files.
-- Which file (option, $TENCENTCLOUD_CREDENTIALS_FILE, ~/.tencentcloud,
-- /etc/tencentcloud), which section, the INI rules, and every bad file
-- (missing, unreadable, no such section, a key missing, CR/LF in a value):
-- each a CredentialError naming the file and the problem, never a value.
local credentials = require "ecdn.credentials"
local errors = require "ecdn.errors"
local proc = require "support.proc"

local ID, KEY, TOKEN = "AKIDcanaryprofile00000000000000000001", "CanaryProfileSecretKey01", "canary-profile-token-01"

local function getenv_of(t)
  return function(name) return t[name] end
end

local dir
local n = 0

-- Writes text to a new file under the temp dir; returns its path.
local function write(text, path)
  n = n + 1
  path = path or (dir .. "/credentials-" .. n)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local function profile(opts, vars)
  opts.getenv = getenv_of(vars or {})
  opts.system_file = opts.system_file or (dir .. "/no-system-file")
  return credentials.profile(opts)
end

-- A credential error that names `file` and the problem and holds no secret.
local function file_error(file, problem, c, err)
  assert.is_nil(c)
  assert.is_true(errors.is_error(err))
  assert.equal("ClientError.CredentialError", err.code)
  assert.equal("profile", err.provider)
  if file then assert.truthy(err.message:find(file, 1, true), "file not named: " .. err.message) end
  assert.truthy(err.message:find(problem, 1, true), "problem not named: " .. err.message)
  for _, secret in ipairs { ID, KEY, TOKEN, "AKIDother", "OtherKey" } do
    assert.is_nil(err.message:find(secret, 1, true), "a secret in the error: " .. err.message)
    assert.is_nil(tostring(err):find(secret, 1, true))
  end
  return err
end

local GOOD = "[default]\nsecret_id = " .. ID .. "\nsecret_key = " .. KEY .. "\n"

describe("credentials.profile", function()
  setup(function()
    dir = proc.tmpname()
    assert(os.execute("mkdir -p " .. proc.quote(dir)))
  end)
  teardown(function() os.execute("rm -rf " .. proc.quote(dir)) end)

  describe("reads", function()
    it("[default] secret_id and secret_key, no token, no expiry; source names file and section", function()
      local file = write(GOOD)
      local c = assert(profile { file = file }:get(0))
      assert.same({ secret_id = ID, secret_key = KEY, source = "profile " .. file .. " [default]" }, c)
    end)

    it("the optional token", function()
      local c = assert(profile { file = write(GOOD .. "token = " .. TOKEN .. "\n") }:get(0))
      assert.equal(TOKEN, c.token)
    end)

    it("a named section, and only that one", function()
      local file = write(GOOD .. "\n[prod]\nsecret_id=AKIDother\nsecret_key=OtherKey\n")
      local c = assert(profile { file = file, name = "prod" }:get(0))
      assert.equal("AKIDother", c.secret_id)
      assert.equal("OtherKey", c.secret_key)
      assert.equal("profile " .. file .. " [prod]", c.source)
    end)

    it("INI as configparser reads it: comments, blank lines, case-insensitive keys, `:`, spaces, "
      .. "CRLF line ends, a BOM, other keys and sections", function()
      local text = "\239\187\191# a comment\r\n; another\r\n\r\n[other]\r\nsecret_id = AKIDother\r\n"
        .. "[ default ]\r\n  Secret_ID\t=\t" .. ID .. "  \r\nregion = ap-guangzhou\r\n"
        .. "  continued line of region\r\nSECRET_KEY: " .. KEY .. "\r\n[last]\r\nx = y"
      local c = assert(profile { file = write(text) }:get(0))
      assert.equal(ID, c.secret_id)
      assert.equal(KEY, c.secret_key)
      assert.is_nil(c.token)
    end)

    it("the file again at each get", function()
      local file = write(GOOD)
      local p = profile { file = file }
      assert.equal(ID, assert(p:get(0)).secret_id)
      write("[default]\nsecret_id = AKIDother\nsecret_key = OtherKey\n", file)
      assert.equal("AKIDother", assert(p:get(0)).secret_id)
    end)
  end)

  describe("finds the file", function()
    it("$TENCENTCLOUD_CREDENTIALS_FILE first", function()
      local file = write(GOOD)
      local home = dir .. "/home-env"
      os.execute("mkdir -p " .. home .. "/.tencentcloud")
      write("[default]\nsecret_id=AKIDother\nsecret_key=OtherKey\n", home .. "/.tencentcloud/credentials")
      local c = assert(profile({}, { TENCENTCLOUD_CREDENTIALS_FILE = file, HOME = home }):get(0))
      assert.equal(ID, c.secret_id)
    end)

    it("the file option before $TENCENTCLOUD_CREDENTIALS_FILE", function()
      local file = write(GOOD)
      local c = assert(profile({ file = file }, { TENCENTCLOUD_CREDENTIALS_FILE = dir .. "/nope" }):get(0))
      assert.equal(ID, c.secret_id)
    end)

    it("$TENCENTCLOUD_CREDENTIALS_FILE set but empty is an error", function()
      file_error(nil, "TENCENTCLOUD_CREDENTIALS_FILE is set but empty",
                 profile({}, { TENCENTCLOUD_CREDENTIALS_FILE = "" }):get(0))
    end)

    it("$TENCENTCLOUD_CREDENTIALS_FILE naming a missing file is an error, not absent", function()
      local err = file_error(dir .. "/missing-env", "no such file",
                             profile({}, { TENCENTCLOUD_CREDENTIALS_FILE = dir .. "/missing-env" }):get(0))
      assert.is_nil(err.absent)
    end)

    it("~/.tencentcloud/credentials, before the system file", function()
      local home = dir .. "/home1"
      os.execute("mkdir -p " .. home .. "/.tencentcloud")
      local file = write(GOOD, home .. "/.tencentcloud/credentials")
      local system = write("[default]\nsecret_id=AKIDother\nsecret_key=OtherKey\n")
      local c = assert(profile({ system_file = system }, { HOME = home .. "/" }):get(0))
      assert.equal(ID, c.secret_id)
      assert.equal("profile " .. file .. " [default]", c.source)
    end)

    it("the system file (/etc/tencentcloud/credentials) when there is none at home", function()
      local system = write(GOOD)
      local c = assert(profile({ system_file = system }, { HOME = dir .. "/empty-home" }):get(0))
      assert.equal("profile " .. system .. " [default]", c.source)
      c = assert(profile({ system_file = system }, {}):get(0)) -- HOME unset
      assert.equal(ID, c.secret_id)
    end)

    it("the system file by default is /etc/tencentcloud/credentials", function()
      local c, e = credentials.profile { getenv = getenv_of { HOME = dir .. "/empty-home" } }:get(0)
      if c then return end -- this machine has one: nothing more to check
      assert.truthy(e.message:find("/etc/tencentcloud/credentials", 1, true), e.message)
    end)

    it("none at all is absent, naming where it looked", function()
      local err = file_error(dir .. "/empty-home/.tencentcloud/credentials", "no credentials file",
                             profile({}, { HOME = dir .. "/empty-home" }):get(0))
      assert.truthy(err.message:find(dir .. "/no-system-file", 1, true), err.message)
      assert.is_true(err.absent)
    end)
  end)

  describe("refuses, naming the file and the problem, never a value", function()
    it("a missing file given by name (not absent)", function()
      local err = file_error(dir .. "/missing", "no such file", profile { file = dir .. "/missing" }:get(0))
      assert.is_nil(err.absent)
      assert.equal(dir .. "/missing", err.file)
    end)

    it("an unreadable file (a directory)", function()
      file_error(dir, "cannot be", profile { file = dir }:get(0))
    end)

    local is_root = proc.run("id -u") == "0\n"
    if not is_root then
      it("an unreadable file (mode 000)", function()
        local file = write(GOOD)
        os.execute("chmod 000 " .. proc.quote(file))
        file_error(file, "cannot be opened (Permission denied)", profile { file = file }:get(0))
      end)
    end

    it("an empty file: no section", function()
      local file = write("")
      file_error(file, "no section [default]", profile { file = file }:get(0))
    end)

    it("no such section", function()
      local file = write(GOOD)
      file_error(file, "no section [staging]", profile { file = file, name = "staging" }:get(0))
    end)

    it("section names are case-sensitive", function()
      local file = write("[Default]\nsecret_id = " .. ID .. "\nsecret_key = " .. KEY .. "\n")
      file_error(file, "no section [default]", profile { file = file }:get(0))
    end)

    it("secret_key missing", function()
      local file = write("[default]\nsecret_id = " .. ID .. "\n")
      file_error(file, file .. " [default]: no secret_key", profile { file = file }:get(0))
    end)

    it("secret_id missing (present only in another section)", function()
      local file = write("[other]\nsecret_id = " .. ID .. "\n[default]\nsecret_key = " .. KEY .. "\n")
      file_error(file, "no secret_id", profile { file = file }:get(0))
    end)

    it("an empty value", function()
      local file = write("[default]\nsecret_id =\nsecret_key = " .. KEY .. "\n")
      file_error(file, "secret_id is empty", profile { file = file }:get(0))
    end)

    it("CR in a value", function()
      local file = write("[default]\nsecret_id = " .. ID .. "\nsecret_key = Canary\rProfileSecretKey01\n")
      file_error(file, "the value of secret_key on line 3 contains CR", profile { file = file }:get(0))
    end)

    it("CR in the token", function()
      local file = write(GOOD .. "token = canary-profile\r-token-01\n")
      file_error(file, "token on line 4 contains CR", profile { file = file }:get(0))
    end)

    it("LF in a value (a continuation line)", function()
      local file = write("[default]\nsecret_id = " .. ID .. "\n  continued\nsecret_key = " .. KEY .. "\n")
      file_error(file, "the value of secret_id continues on line 3 (a value with LF)", profile { file = file }:get(0))
    end)

    it("a line indented as deep as its key is a key of its own (configparser)", function()
      local file = write("[default]\n    secret_id = " .. ID .. "\n    secret_key = " .. KEY .. "\n")
      local c, err = profile { file = file }:get(0)
      assert.is_nil(err)
      assert.equal(ID, c.secret_id)
      assert.equal(KEY, c.secret_key)
      -- deeper than the key: its value goes on (refused)
      file = write("[default]\n  secret_id = " .. ID .. "\n    continued\n  secret_key = " .. KEY .. "\n")
      file_error(file, "the value of secret_id continues on line 3 (a value with LF)", profile { file = file }:get(0))
    end)

    it("NUL in a value", function()
      local file = write("[default]\nsecret_id = " .. ID .. "\nsecret_key = Canary\0ProfileSecretKey01\n")
      file_error(file, "SecretKey contains CR, LF or NUL (from profile " .. file .. " [default])",
                 profile { file = file }:get(0))
    end)

    it("a key given twice", function()
      local file = write(GOOD .. "secret_key = OtherKey\n")
      file_error(file, "secret_key is given twice in one section (line 4)", profile { file = file }:get(0))
    end)

    it("a line that is not INI, by number, not by content", function()
      local file = write("[default]\n" .. ID .. "\nsecret_key = " .. KEY .. "\n")
      file_error(file, "line 2 is neither a section, a key = value nor a comment", profile { file = file }:get(0))
    end)

    it("a key before any section", function()
      local file = write("secret_id = " .. ID .. "\n" .. GOOD)
      file_error(file, "line 1 has a key outside any section", profile { file = file }:get(0))
    end)

    it("an unclosed section header", function()
      local file = write("[default\nsecret_id = " .. ID .. "\n")
      file_error(file, "line 1 opens a section without closing it", profile { file = file }:get(0))
    end)

    it("text after a section header is ignored, as configparser does", function()
      local file = write("[prod] ; the production account\nsecret_id = AKIDprod\nsecret_key = ProdKey\n\n"
                         .. "[default]   # ours\nsecret_id = " .. ID .. "\nsecret_key = " .. KEY .. "\n")
      local c, err = profile { file = file }:get(0)
      assert.is_nil(err)
      assert.equal(ID, c.secret_id)
      c, err = profile { file = file, name = "prod" }:get(0)
      assert.is_nil(err)
      assert.equal("AKIDprod", c.secret_id)
    end)

    it("a file over 1 MiB", function()
      local file = write(GOOD .. "# " .. string.rep("x", 1024 * 1024) .. "\n")
      file_error(file, "larger than 1 MiB", profile { file = file }:get(0))
    end)
  end)

  it("raises on bad options", function()
    assert.has_error(function() credentials.profile { file = 42 } end)
    assert.has_error(function() credentials.profile { file = "" } end)
    assert.has_error(function() credentials.profile { name = "a]b" } end)
  end)
end)
