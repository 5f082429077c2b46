-- wrk: POST /fhir/Patient, a new provisional identity each time, with an address
-- and a phone (first argument: the token; second: a prefix for the names).
local token, prefix, n = nil, "A", 0
local letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
function init(args)
  token = args[1]
  prefix = args[2] or "A"
end
-- A name made of letters only (the INS rules refuse digits in names).
local function name(k)
  local s = ""
  repeat
    local d = k % 26
    s = s .. letters:sub(d + 1, d + 1)
    k = math.floor(k / 26)
  until k == 0
  return s
end
function request()
  n = n + 1
  local body = string.format([[{"resourceType":"Patient","name":[{"use":"official","family":"Charge%s%s","given":["Test"]}],"gender":"female","birthDate":"1970-01-01","telecom":[{"system":"phone","use":"mobile","value":"0612345678"}],"address":[{"use":"home","line":["1 rue du Banc"],"postalCode":"69002","city":"Lyon"}]}]], prefix, name(n))
  return wrk.format("POST", "/fhir/Patient",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/fhir+json" }, body)
end
dofile("benches/fhir/report.lua")
