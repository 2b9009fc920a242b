-- wrk script: POST /orders with a valid body; reports p50/p99/p99.9 and,
-- when ORDERS_LIMIT is set, stops each thread after its share of requests.
wrk.method = "POST"
wrk.body = '{"customer_id":"c-bench","currency":"BRL","items":[{"product_id":"p-1","quantity":2,"unit_price_cents":1500}]}'
wrk.headers["Content-Type"] = "application/json"

local limit = tonumber(os.getenv("ORDERS_PER_THREAD") or "0")
local sent, non201 = 0, 0

function response(status, headers, body)
  sent = sent + 1
  if status ~= 201 then non201 = non201 + 1 end
  if limit > 0 and sent >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors_connect=%d errors_read=%d errors_status=%d errors_timeout=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.status,
    summary.errors.timeout, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000))
end
