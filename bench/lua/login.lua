-- POST /api/v1/auth/token (OAuth2 password form), rotating over the demo users.
-- Arguments: users password (demo1@example.com ... demo{users}@example.com).
local common = require "common"

local users, password
local next_user = 0

function init(args)
  common.seed()
  users, password = tonumber(args[1]), args[2]
  next_user = math.random(0, users - 1)
end

function request()
  next_user = next_user % users + 1
  local body = "username=demo" .. next_user .. "%40example.com&password=" .. password
  return wrk.format("POST", "/api/v1/auth/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end
