-- A unique address per request: GET /api/v1/verify?email=<prefix>t<thread>.<n>@<domain>.
-- Arguments after `--`: the prefix (unique per run), then the domains to cycle through.

local thread_count = 0
setup = function(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end

local counter = 0
local prefix = "c"
local domains = {}

init = function(args)
  prefix = args[1] or "c"
  for i = 2, #args do
    domains[#domains + 1] = args[i]
  end
  if #domains == 0 then
    domains[1] = "gmail.com"
  end
end

request = function()
  counter = counter + 1
  local domain = domains[(counter % #domains) + 1]
  local path = "/api/v1/verify?email=" .. prefix .. "t" .. tostring(tid) .. "." ..
    counter .. "@" .. domain
  return wrk.format("GET", path)
end
