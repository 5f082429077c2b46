-- wrk: Patient searches as an integrator's desk makes them (first argument: the
-- token): a name's first letters, with a given name or a birth date, a birth
-- date alone, the second page of a name, and a count. The values turn through
-- names and dates of the data set that scripts/bench-fhir loads.
local token, i = nil, 0
local families = { "mar", "ber", "dub", "lam", "gar", "petit", "rou", "chaval", "monle", "dupont",
                   "fon", "guil", "sarta", "lef", "pico", "mercier", "verque", "bou", "grama", "tel" }
local givens = { "mar", "jea", "mon", "pie", "fra", "mic", "cat", "and", "nat", "phi" }
local forms = {
  function(k) return "/fhir/Patient?family=" .. families[k % #families + 1] .. "&_count=20" end,
  function(k) return "/fhir/Patient?family=" .. families[k % #families + 1] .. "&given=" .. givens[k % #givens + 1] .. "&_count=20" end,
  function(k) return string.format("/fhir/Patient?birthdate=%d-%02d-%02d", 1930 + k % 80, 1 + k % 12, 1 + k % 28) end,
  function(k) return string.format("/fhir/Patient?family=%s&birthdate=%d-%02d-%02d", families[k % #families + 1], 1930 + k % 80, 1 + k % 12, 1 + k % 28) end,
  function(k) return "/fhir/Patient?family=" .. families[k % #families + 1] .. "&_count=20&_offset=20&_sort=-_lastUpdated" end,
  function(k) return "/fhir/Patient?family=" .. families[k % #families + 1] .. "&_summary=count" end,
}
-- SEARCH_FORM=N (1 to 6) sends only that form (to see what each costs).
local only = tonumber(os.getenv("SEARCH_FORM") or "")
function init(args) token = args[1] end
function request()
  i = i + 1
  local k = math.floor(i / #forms)
  local form = only and forms[only] or forms[i % #forms + 1]
  return wrk.format("GET", form(k),
    { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json" })
end
dofile("benches/fhir/report.lua")
