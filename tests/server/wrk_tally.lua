-- wrk script of tests/server/test_load.py: counts responses by status in
-- every thread and prints the totals, so the test can check that each
-- request was answered with 200 or a deliberate 429 and none was lost.
-- SMDIFF_WRK_BODY, when set, makes the requests POSTs of that JSON body to
-- the URL's path, 20 ms apart on each connection.
local body = os.getenv("SMDIFF_WRK_BODY")
if body and #body > 0 then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  -- a client told 429 comes back a little later, as real ones do; without
  -- a pause the refusals alone would keep both cores busy
  function delay()
    return 20
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do
      all[k] = (all[k] or 0) + v
    end
  end
  io.write("STATUS")
  for k, v in pairs(all) do
    io.write(string.format(" %d=%d", k, v))
  end
  io.write("\n")
  local e = summary.errors
  io.write(string.format("SUMMARY requests=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
