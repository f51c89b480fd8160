-- GET {prefix}{id} with an id drawn uniformly from [first, last] on every request, so reads
-- spread over the whole catalog instead of one hot row.
-- Arguments: prefix first last (e.g. /api/v1/items/ 1 3000).
local common = require "common"

local prefix, first, last

function init(args)
  common.seed()
  prefix, first, last = args[1], tonumber(args[2]), tonumber(args[3])
end

function request()
  return wrk.format("GET", prefix .. math.random(first, last))
end
