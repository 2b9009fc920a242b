"""A scriptable payment provider for the worker's http provider (issue 12).

It honours the provider contract the README documents: the Idempotency-Key
(the order id) names one payment; the first call that charges records the
result, and every later call with the same key gets that same result back
without charging again. `charges[key]` counts real charges (at most 1 if the
worker keeps the contract's side), `calls[key]` every request.

Modes (`stub.mode`, changeable while the worker runs):
  "approve"               200 {"status":"approved","payment_id":...}
  "decline"               200 {"status":"declined","reason":stub.reason}
  "http402"               402 {"reason":stub.reason}
  ("fail", n)             503 for the key's first n calls, then approve
  "hang"                  charge (once), then never answer: every answer is lost
`stub.delay_s` holds every answer that long (so calls overlap); `max_open` is
the most calls held at once; `stub.pad` adds a "padding" field of that many
bytes to every answer (answers longer than one read).
"""
import json
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class PaymentStub:
    def __init__(self, mode="approve", reason="insufficient_funds"):
        self.mode = mode
        self.reason = reason
        self.calls = Counter()
        self.charges = Counter()
        self.results = {}  # key -> (status, body): what a replay of the key gets
        self.requests = []  # (headers dict, body dict) of every call
        self.connections = set()  # client (host, port) pairs: one per TCP connection
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.delay_s = 0.0
        self.pad = 0
        self.open = self.max_open = 0  # calls being answered now, and the most at once
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse shows

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(n, 65536))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                key = self.headers.get("Idempotency-Key", "")
                with stub.lock:
                    stub.connections.add(self.client_address)
                status, answer, hang = stub._decide(key, dict(self.headers), body)
                if hang:
                    stub.release.wait(60)
                    return
                if stub.delay_s:
                    with stub.lock:
                        stub.open += 1
                        stub.max_open = max(stub.max_open, stub.open)
                    stub.release.wait(stub.delay_s)
                    with stub.lock:
                        stub.open -= 1
                if stub.pad:
                    answer = dict(answer, padding="x" * stub.pad)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # hundreds of workers' calls may connect at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/payments"

    def _charge(self, key):
        pid = "pay_" + uuid.uuid4().hex[:16]
        self.charges[key] += 1
        self.results[key] = (200, {"status": "approved", "payment_id": pid})
        return self.results[key]

    def _decide(self, key, headers, body):
        with self.lock:
            self.calls[key] += 1
            self.requests.append((headers, body))
            mode = self.mode
            if mode == "hang":  # charged once, and no answer ever arrives
                if key not in self.results:
                    self._charge(key)
                return 0, None, True
            if key in self.results:  # a replay: the recorded result, no new charge
                return (*self.results[key], False)
            if isinstance(mode, tuple) and mode[0] == "fail":
                if self.calls[key] <= mode[1]:
                    return 503, {"error": "provider busy"}, False
                mode = "approve"
            if mode == "approve":
                return (*self._charge(key), False)
            if mode == "decline":
                self.results[key] = (200, {"status": "declined", "reason": self.reason})
                return (*self.results[key], False)
            if mode == "http402":
                self.results[key] = (402, {"reason": self.reason})
                return (*self.results[key], False)
            raise AssertionError(f"unknown mode {mode!r}")

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
