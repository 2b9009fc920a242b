-- wrk script: SendMessageBatch (10 messages shaped like order-api's: a small
-- JSON body, the correlation_id and traceparent message attributes and an
-- AWSTraceHeader) straight to an SQS server with the JSON protocol. Measures
-- what the SQS server itself can take on this machine, for comparison with the
-- rate at which order-api publishes.
-- Environment: QUEUE_URL (required).
local queue = os.getenv("QUEUE_URL") or error("QUEUE_URL is required")
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "AmazonSQS.SendMessageBatch"
wrk.headers["X-Amz-Date"] = os.date("!%Y%m%dT%H%M%SZ")
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=test/" .. os.date("!%Y%m%d") ..
  "/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" ..
  string.rep("0", 64)

local entries = {}
for i = 0, 9 do
  local id = string.format("%08x-0000-4000-8000-%012x", math.random(0, 0x7fffffff), i)
  entries[#entries + 1] = string.format(
    '{"Id":"%d","MessageBody":"{\\"type\\":\\"order.created\\",\\"version\\":1,\\"order_id\\":\\"%s\\"}",' ..
    '"MessageAttributes":{"correlation_id":{"DataType":"String","StringValue":"%s"},' ..
    '"traceparent":{"DataType":"String","StringValue":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},' ..
    '"MessageSystemAttributes":{"AWSTraceHeader":{"DataType":"String","StringValue":"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"}}}',
    i, id, id)
end
wrk.body = '{"QueueUrl":"' .. queue .. '","Entries":[' .. table.concat(entries, ",") .. ']}'

ok, bad = 0, 0
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local nok, nbad = 0, 0
  for _, t in ipairs(threads) do
    nok = nok + (t:get("ok") or 0)
    nbad = nbad + (t:get("bad") or 0)
  end
  io.write(string.format("RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f ok=%d non200=%d errors_socket=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, nok, nbad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
