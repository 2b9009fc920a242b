-- wrk script: POST /orders with a valid body; reports p50/p99/p99.9 and the
-- number of responses that were not 201.
-- Environment:
--   ORDERS_PER_THREAD=N  each wrk thread POSTs exactly N orders, then sends only
--                        GET /healthz (so that requests already in flight create no
--                        extra order) and stops after its N POST responses. wrk
--                        itself still runs until -d or SIGINT (bench/run.sh sends
--                        SIGINT once the API has answered all POSTs).
--   CUSTOMER_ID=tag      customer_id of every order (default c-bench), so that a
--                        benchmark run can find its own orders in the database
--   AUTHORIZATION=value  sent as the Authorization header (bench/auth_bench.py:
--                        "Bearer <token>"); unset, none is sent
wrk.method = "POST"
local customer = os.getenv("CUSTOMER_ID") or "c-bench"
if not customer:match("^[%w._:-]+$") or #customer > 128 then
  error("CUSTOMER_ID must be 1-128 characters of [A-Za-z0-9._:-]")
end
wrk.body = '{"customer_id":"' .. customer ..
  '","currency":"BRL","items":[{"product_id":"p-1","quantity":2,"unit_price_cents":1500}]}'
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("AUTHORIZATION")
if authorization then wrk.headers["Authorization"] = authorization end

local limit = tonumber(os.getenv("ORDERS_PER_THREAD") or "0")
-- per-thread counters (each wrk thread has its own Lua state); done() sums them
sent, non201, created = 0, 0, 0

-- Only with a limit: a request() function makes wrk build every request in Lua.
if limit > 0 then
  local post = wrk.format()
  local health = wrk.format("GET", "/healthz", {}, nil)
  issued = 0
  function request()
    -- wrk (4.x) calls request() once on the first thread's state before the run
    -- to check it; that call sends nothing.
    if tid == 1 and not checked then
      checked = true
      return post
    end
    issued = issued + 1
    if issued <= limit then return post end
    return health
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function response(status, headers, body)
  if limit > 0 and status == 200 then return end -- GET /healthz after the limit
  sent = sent + 1
  if status == 201 then created = created + 1 else non201 = non201 + 1 end
  if limit > 0 and sent >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local n201, nnon = 0, 0
  for _, t in ipairs(threads) do
    n201 = n201 + (t:get("created") or 0)
    nnon = nnon + (t:get("non201") or 0)
  end
  io.write(string.format("RESULT requests=%d errors_connect=%d errors_read=%d errors_status=%d errors_timeout=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f created=%d non201=%d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.status,
    summary.errors.timeout, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, n201, nnon))
end
