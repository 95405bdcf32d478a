-- Shared by the ingest scripts (loaded with dofile by each): per-thread ids, answer checks,
-- and a one-line JSON summary ("BENCH {...}") printed by done() for bench/ingest.py.
-- wrk runs setup() in the main Lua state, init()/request()/response() in each thread's own.
local threads = {}
local next_tid = 1

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- args: <run tag: 2 letters> <expected changes per request>
function common_init(args)
  tag = args[1] or "Aa"
  per_request = tonumber(args[2] or "1")
  seq = 0
  ok = 0        -- 200/202 with the expected body
  non2xx = 0    -- any other status
  badbody = 0   -- 2xx, but not an Ack / not every event accepted as new
  sample = ""
end

-- A unique 15-character suffix for Salesforce ids: tag(2) tid(2) seq(11).
function sfx()
  return string.format("%s%02d%011d", tag, tid, seq)
end

function check(status, body, ok_status, needle)
  if status ~= ok_status then
    non2xx = non2xx + 1
    if sample == "" then sample = tostring(status) .. " " .. string.sub(body or "", 1, 200) end
  elseif needle and not string.find(body or "", needle, 1, true) then
    badbody = badbody + 1
    if sample == "" then sample = tostring(status) .. " " .. string.sub(body or "", 1, 200) end
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local t_ok, t_non2xx, t_bad, t_sample = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    t_ok = t_ok + (t:get("ok") or 0)
    t_non2xx = t_non2xx + (t:get("non2xx") or 0)
    t_bad = t_bad + (t:get("badbody") or 0)
    local s = t:get("sample")
    if s and s ~= "" and t_sample == "" then t_sample = s end
  end
  local e = summary.errors
  t_sample = string.gsub(t_sample, '[%c"\\]', " ")
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"ok":%d,"non2xx":%d,"badbody":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"sample":"%s"}\n',
    summary.requests, summary.duration, summary.bytes, t_ok, t_non2xx, t_bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, t_sample))
end
