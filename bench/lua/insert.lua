-- POST a small JSON row to the raw asyncpg INSERT baseline. Argument: path.
local common = require "common"

local path

function init(args)
  common.seed()
  path = args[1]
end

function request()
  local body = string.format('{"name":"bench row","quantity":%d}', math.random(1, 1000))
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
