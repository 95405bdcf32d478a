-- GET /healthz: the HTTP ceiling of the same server under the same load.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function init(args)
  common_init(args)
  req = wrk.format("GET", "/healthz")
end

function request()
  return req
end

function response(status, headers, body)
  check(status, body, 200, '"ok"')
end
