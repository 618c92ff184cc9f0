-- wrk's summary and latency percentiles as one JSON line, prefixed BENCH_JSON, on stdout.
-- Loaded by benchmarks/wrk.py in front of a request script (or alone for a fixed URL).

local function percentiles(latency)
  local points = {}
  -- 0 to 99.99 percent, denser towards the tail (for the latency distribution plot).
  for k = 0, 40 do
    local p = 100 * (1 - 10 ^ (-k / 10))
    points[#points + 1] = string.format("[%.4f,%d]", p, latency:percentile(p))
  end
  points[#points + 1] = string.format("[100,%d]", latency.max)
  return table.concat(points, ",")
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"curve":[%s]}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), percentiles(latency)))
end
