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
dofile("benches/fhir/report.lua")
