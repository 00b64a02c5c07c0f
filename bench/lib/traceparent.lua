-- wrk script (throughput.mjs --traceparent): every request carries a
-- traceparent of its own, as a service behind a traced one receives them.
-- The requests are made once, in init (a random trace id and parent id each,
-- sampled), and sent in turn: making each one in Lua as it is sent would
-- take the load generator's time, not the server's.
local COUNT = 4096
local requests = {}
local next_request = 0

local DIGITS = "0123456789abcdef"

-- `n` random lower-case hex digits, the first never 0 (so never all zeros).
local function hex(n)
  local digits = {}
  local first = math.random(2, 16)
  digits[1] = DIGITS:sub(first, first)
  for i = 2, n do
    local d = math.random(1, 16)
    digits[i] = DIGITS:sub(d, d)
  end
  return table.concat(digits)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for i = 1, COUNT do
    local headers = { ["traceparent"] = "00-" .. hex(32) .. "-" .. hex(16) .. "-01" }
    requests[i] = wrk.format(nil, nil, headers)
  end
end

function request()
  next_request = next_request % COUNT + 1
  return requests[next_request]
end
