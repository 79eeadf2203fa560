-- wrk requests for todopy: GET or PUT (BENCH_METHOD) of random users' todos, each with its bearer token.
-- BENCH_PAIRS names a file of "<token> <todo id>" lines. Requests are formatted once, in init.
local requests = {}
local next_index = 1

function init(args)
  local method = os.getenv("BENCH_METHOD") or "GET"
  for line in io.lines(os.getenv("BENCH_PAIRS")) do
    local token, id = line:match("^(%S+)%s+(%S+)$")
    local headers = { ["Authorization"] = "Bearer " .. token }
    local body = nil
    if method == "PUT" then
      headers["Content-Type"] = "application/json"
      body = '{"title":"wrk ' .. #requests .. '","completed":' .. tostring(#requests % 2 == 0) .. '}'
    end
    requests[#requests + 1] = wrk.format(method, "/api/todos/" .. id .. "/", headers, body)
  end
  next_index = math.random(#requests)   -- threads start at different users
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
