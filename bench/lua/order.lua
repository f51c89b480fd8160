-- POST /api/v1/orders with one line of quantity 1, rotating over several users' tokens so a
-- per-user limit or lock never serialises the whole run on one account.
-- Arguments: tokens_file first last. first == last is the flash sale: every order is for
-- one hot item.
local common = require "common"

local tokens = {}
local next_token = 0
local first, last

function init(args)
  common.seed()
  for line in io.lines(args[1]) do
    if line ~= "" then
      table.insert(tokens, "Bearer " .. line)
    end
  end
  first, last = tonumber(args[2]), tonumber(args[3])
  next_token = math.random(0, #tokens - 1)
end

local template = '{"lines":[{"item_id":%d,"quantity":1}],"shipping":"standard",'
  .. '"address":{"street":"1 Bench Street","city":"Lisbon","country":"PT"}}'

function request()
  next_token = next_token % #tokens + 1
  local body = string.format(template, math.random(first, last))
  return wrk.format("POST", "/api/v1/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = tokens[next_token],
  }, body)
end
