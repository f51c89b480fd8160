-- One catalog page per request, cycling through a few offsets so more than one page (and
-- more than one cache entry) is read. Arguments: path offset... where path ends in a query.
local common = require "common"

local paths = {}
local next_path = 0

function init(args)
  common.seed()
  for index = 2, #args do
    table.insert(paths, args[1] .. "&offset=" .. args[index])
  end
  next_path = math.random(0, #paths - 1)
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end
