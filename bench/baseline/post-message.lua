-- wrk script for benchmark (c): POST /api/channels/{id}/messages round-robin over the channel
-- ids listed (one a line) in the file named by the CHANNELS environment variable.
local ids = {}
for line in io.lines(os.getenv("CHANNELS")) do
  if #line > 0 then ids[#ids + 1] = line end
end
local counter = 0
local thread_no = 0
local body = '{"author":"bench","content":"hello from wrk"}'
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN") }

function setup(thread)
  thread:set("offset", thread_no * 7)
  thread_no = thread_no + 1
end

function request()
  counter = counter + 1
  local id = ids[((counter + offset) % #ids) + 1]
  return wrk.format("POST", "/api/channels/" .. id .. "/messages", headers, body)
end
