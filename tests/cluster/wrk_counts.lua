-- wrk script for the cluster tests: headers, method and body from the environment,
-- and a count of answers per status code (wrk itself only counts "non-2xx").
--   WRK_HEADERS  "Name: value" lines, newline separated
--   WRK_METHOD   GET by default
--   WRK_BODY     request body (sent as JSON)
-- done() prints "STATUS <code> <count>" lines and "LATENCY_US <p50> <p99> <max>".

local headers = os.getenv("WRK_HEADERS") or ""
for line in headers:gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then
        wrk.headers[name] = value
    end
end
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
end

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("statuses")) do
            total[status] = (total[status] or 0) + count
        end
    end
    for status, count in pairs(total) do
        io.write(string.format("STATUS %d %d\n", status, count))
    end
    io.write(string.format(
        "LATENCY_US %d %d %d\n", latency:percentile(50), latency:percentile(99), latency.max
    ))
end
