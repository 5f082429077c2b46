-- wrk: Patient searches by family name and by birth date, paged (first argument: the token).
local token, i = nil, 0
local queries = {
  "/fhir/Patient?family=ma&_count=20",
  "/fhir/Patient?given=mar&_count=20&_sort=-_lastUpdated",
  "/fhir/Patient?birthdate=1961-04-12",
  "/fhir/Patient?_count=20&_offset=20",
  "/fhir/Patient?_summary=count",
}
function init(args) token = args[1] end
function request()
  i = i + 1
  return wrk.format("GET", queries[(i % #queries) + 1],
    { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json" })
end
dofile("benches/fhir/report.lua")
