-- Shared by every scenario: counts response statuses per thread and, when the run ends,
-- prints one JSON line that bench/wrk.py reads. wrk's own error count only covers statuses
-- of 400 and above; a redirect or a 304 would slip through it, so every status is counted.
-- A 503 is also told apart: the refusal section 8 allows under overload carries the
-- `overloaded` problem type and Retry-After, and any other 503 is an error like the rest.
-- Scenarios load it with `require "common"`; wrk runs from this directory.

local M = {}

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  -- Distinct per thread, so two threads never replay the same "random" sequence.
  thread:set("thread_number", #threads)
end

-- Globals, because done() reads each thread's copy through thread:get.
status_counts = {}
refused = 0

local OVERLOADED = "urn:problem-type:overloaded"

local function is_refusal(headers, body)
  if body == nil or not string.find(body, OVERLOADED, 1, true) then
    return false
  end
  -- Header names arrive as the server wrote them; HTTP makes them case-insensitive.
  for name, value in pairs(headers) do
    if string.lower(name) == "retry-after" and value ~= "" then
      return true
    end
  end
  return false
end

function response(status, headers, body)
  status_counts[status] = (status_counts[status] or 0) + 1
  if status == 503 and is_refusal(headers, body) then
    refused = refused + 1
  end
end

function M.seed()
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
end

local function merged_statuses()
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("status_counts")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  return totals
end

local function merged_refusals()
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("refused")
  end
  return total
end

local function json_value(value)
  -- A run with no responses has a NaN mean, which JSON cannot carry.
  if type(value) == "number" and value ~= value then
    return "null"
  end
  return tostring(value)
end

local function json_object(values)
  local parts = {}
  for key, value in pairs(values) do
    table.insert(parts, string.format("%q:%s", tostring(key), json_value(value)))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local errors = summary.errors
  local result = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    connect_errors = errors.connect,
    read_errors = errors.read,
    write_errors = errors.write,
    status_errors = errors.status,
    timeouts = errors.timeout,
    latency_mean_us = latency.mean,
    latency_max_us = latency.max,
    latency_p50_us = latency:percentile(50),
    latency_p90_us = latency:percentile(90),
    latency_p99_us = latency:percentile(99),
    statuses = json_object(merged_statuses()),
    refused = merged_refusals(),
  }
  io.write("BENCH-RESULT " .. json_object(result) .. "\n")
end

return M
