-- What every run of scripts/bench-fhir prints when it ends: requests, errors,
-- duration (µs), p50 and p99 (ms), one line the script reads.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %.2f %.2f\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
