-- ecdn.errors: the code catalogue, retryability and the one-line tostring.
local errors = require "ecdn.errors"

describe("ecdn.errors", function()
  it("gives every catalogued code a one-line meaning and a boolean retryable", function()
    local n = 0
    for code, entry in pairs(errors.codes) do
      n = n + 1
      assert.matches("^%u%w*[%.%w]*$", code)
      assert.is_string(entry[1])
      assert.is_nil(entry[1]:find("\n"), code)
      assert.is_boolean(entry[2], code)
      assert.equal(entry[1], errors.meaning(code))
    end
    assert.is_true(n >= 80, "catalogue has " .. n .. " codes")
  end)

  it("retries rate limits, server faults and network failures, not auth, parameter or quota errors", function()
    for code, entry in pairs(errors.codes) do
      if code:find("^RequestLimitExceeded") or code:find("^InternalError") then
        assert.is_true(entry[2], code)
      elseif code:find("^AuthFailure") or code:find("^InvalidParameter") or code:find("^LimitExceeded")
          or code:find("^MissingParameter") or code:find("^UnknownParameter") then
        assert.is_false(entry[2], code)
      end
    end
    assert.is_true(errors.retryable("ClientError.NetworkError"))
    -- Codes the catalogue does not list follow their family.
    assert.is_true(errors.retryable("InternalError.CdnQueryParamError"))
    assert.is_true(errors.retryable("RequestLimitExceeded.SomethingNew"))
    assert.is_false(errors.retryable("AuthFailure.SomethingNew"))
    assert.is_false(errors.retryable("Whatever"))
    assert.is_false(errors.retryable(nil))
  end)

  it("retries HTTP 429 and 5xx only", function()
    assert.is_true(errors.retryable_status(503))
    assert.is_true(errors.retryable_status(429))
    assert.is_false(errors.retryable_status(404))
    assert.is_false(errors.retryable_status(301))
  end)

  it("outcome_unknown: sent with no readable answer, or a failure inside the service", function()
    local unknown = errors.outcome_unknown
    assert.is_true(unknown { code = "ClientError.NetworkError", kind = "network", sent = true })
    assert.is_false(unknown { code = "ClientError.NetworkError", kind = "network", sent = false })
    assert.is_true(unknown { code = "ClientError.ParseJsonError", kind = "http", status = 200, sent = true })
    assert.is_true(unknown { code = "ClientError.HttpStatus", kind = "http", status = 502, sent = true })
    assert.is_false(unknown { code = "ClientError.HttpStatus", kind = "http", status = 404, sent = true })
    assert.is_true(unknown { code = "InternalError", kind = "api", sent = true })
    assert.is_false(unknown { code = "RequestLimitExceeded", kind = "api", sent = true }) -- answered: refused
    assert.is_false(unknown { code = "ClientError.InvalidParameter", kind = "client", sent = false })
    -- purge_all's own word wins: given up unsettled, or settled by its lookup
    assert.is_true(unknown { code = "LimitExceeded.X", kind = "api", sent = true, unknown = true })
    assert.is_false(unknown { code = "ClientError.NetworkError", kind = "network", sent = true, unknown = false })
  end)

  it("prints one line: code, message, request id", function()
    local e = errors.new { code = "LimitExceeded.EcdnPurgeUrlExceedDayLimit", message = "quota\nused up\r",
                           request_id = "4d5a83f8-a61f", kind = "api", status = 200 }
    assert.equal("LimitExceeded.EcdnPurgeUrlExceedDayLimit: quota used up  (request 4d5a83f8-a61f)", tostring(e))
    assert.is_false(e.retryable)
    assert.is_true(errors.is_error(e))
    assert.is_false(errors.is_error({ code = "x" }))
    local n = errors.new { code = "ClientError.NetworkError", message = "refused", kind = "network" }
    assert.equal("ClientError.NetworkError: refused", tostring(n))
    assert.is_true(n.retryable)
  end)
end)
