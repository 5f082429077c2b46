-- wrk: GET /fhir/Patient/{id} over the ids given after `--` (first argument: the token).
local token, ids, i = nil, {}, 0
function init(args)
  token = args[1]
  for k = 2, #args do ids[#ids + 1] = args[k] end
end
function request()
  i = i + 1
  return wrk.format("GET", "/fhir/Patient/" .. ids[(i % #ids) + 1],
    { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json" })
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.2f %.2f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
