-- POST /webhooks/marketo: SPEC section 7's recommended template exactly as Marketo renders it
-- (no status, no eventId: the id is derived from the fields), one object when args[2] is 1,
-- else an array of args[2]. Every leadId is unique, so every derived event id is too.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function init(args)
  common_init(args)
  headers = {["Content-Type"] = "application/json", ["X-Webhook-Secret"] = args[3] or ""}
  -- lead ids: <run number (1-99)> <thread (2 digits)> <sequence (10 digits)>
  base = (tonumber(args[4] or "1") * 100 + tid) * 10000000000
  expect = string.format('"accepted":%d,"duplicates":0', per_request)
end

local function event(now)
  seq = seq + 1
  return string.format('{"type":"member_status_changed","programId":1001,"leadId":%d,' ..
    '"email":"lead%d@example.com","firstName":"Ann","lastName":"Lee","company":"Acme Corp",' ..
    '"occurredAt":"%s"}', base + seq, base + seq, now)
end

function request()
  local now = os.date("!%Y-%m-%d %H:%M:%S")
  local body
  if per_request == 1 then
    body = event(now)
  else
    local parts = {}
    for i = 1, per_request do parts[i] = event(now) end
    body = "[" .. table.concat(parts, ",") .. "]"
  end
  return wrk.format("POST", "/webhooks/marketo", headers, body)
end

function response(status, headers, body)
  check(status, body, 202, expect)
end
