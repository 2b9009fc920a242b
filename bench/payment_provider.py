#!/usr/bin/env python3
"""bench/payment_provider.py - a payment provider for benchmarks: answers every
POST after a fixed delay (default 2000 ms) with {"status":"approved",...},
over thousands of concurrent keep-alive connections, and counts charges per
Idempotency-Key so a run can check one charge per order.

Why Python asyncio and not a C program on libmicrohttpd: at the rates one
worker reaches (1,000-2,000 calls/s, 2,000-5,000 open connections) the cost
that matters is per request, and a bare asyncio.Protocol (no streams, no
per-request task, one timer for the whole FIFO: with a fixed delay the answers
fall due in arrival order) costs about 0.15 ms of CPU per request with its
connection (measured on the shared 2-core machine: 3,000 connections x 2
requests, 0.88 s), 10-15% of one core at 1,000 calls/s -- the worker bench
reports this process's CPU apart ("payment stub") so that stays visible. libmicrohttpd would cost less per request but has no timers: a delay
means suspended connections resumed from a thread of our own, a CMake target
kept out of the images, and more code than the whole of this file, for a
benchmark tool. Stdlib only (no package to install), nothing to build.

The tests' stub (tests/integration/payment_stub.py) is scriptable but a thread
per connection, too slow for this; this one only approves.

Endpoints (127.0.0.1 only):
  POST <--path>   (default /pay) the charge: the first request with a key
                  charges (a new payment id) and every later one gets the same
                  answer back without charging (the provider contract, README
                  "Payment providers"); answered --delay-ms after it arrived
  GET /stats      counts, as JSON (answered at once, in order on its connection)
  GET /charges    {"<key>": {"payment_id": ..., "calls": n}, ...} for every key
Limits: request head 16 KiB, body 64 KiB (413/431 and close), --max-connections.
Stops on SIGTERM/SIGINT or after --max-seconds, printing the final stats.

Usage: bench/payment_provider.py --port 18080 [--delay-ms 2000] [--max-seconds 900]
"""
import argparse
import asyncio
import collections
import json
import resource
import signal
import sys
import time

HEAD_MAX = 16 * 1024
BODY_MAX = 64 * 1024


class Provider:
    def __init__(self, delay_s, path):
        self.delay_s = delay_s
        self.path = path.encode()
        self.charges = {}  # key -> [payment_id, calls]
        self.due = collections.deque()  # (due, slot): arrival order == due order
        self.timer = None
        self.loop = None
        self.stats = collections.Counter()
        self.open = 0
        self.pending = 0

    def snapshot(self):
        s = dict(self.stats)
        s.update(open_connections=self.open, pending=self.pending, keys=len(self.charges),
                 delay_ms=round(self.delay_s * 1000))
        return s

    def charge(self, key, body):
        """The answer to a POST: (status, JSON bytes)."""
        st = self.stats
        st["requests"] += 1
        try:
            order = json.loads(body)
        except ValueError:
            order = None
        if not key or not isinstance(order, dict):
            st["bad_requests"] += 1
            return 400, b'{"status":"declined","reason":"bad_request"}'
        if order.get("order_id") != key:
            st["key_mismatch"] += 1  # the contract: the key is the order id
        c = self.charges.get(key)
        if c is None:
            st["charges"] += 1
            c = self.charges[key] = [f"bp_{st['charges']:010d}", 0]
        else:
            st["replays"] += 1  # same key again: same answer, no new charge
        c[1] += 1
        return 200, b'{"status":"approved","payment_id":"%s"}' % c[0].encode()

    def later(self, slot):
        self.due.append((self.loop.time() + self.delay_s, slot))
        self.pending += 1
        self.stats["max_pending"] = max(self.stats["max_pending"], self.pending)
        if self.timer is None:
            self.timer = self.loop.call_at(self.due[0][0], self.fire)

    def fire(self):
        self.timer = None
        now = self.loop.time()
        touched = set()
        while self.due and self.due[0][0] <= now:
            _, slot = self.due.popleft()
            self.pending -= 1
            slot[0] = True
            if slot[1] is not None:  # None: its connection is gone
                touched.add(slot[1])
        for conn in touched:
            conn.flush()
        if self.due:
            self.timer = self.loop.call_at(self.due[0][0], self.fire)


class Conn(asyncio.Protocol):
    """One HTTP/1.1 connection; answers leave in request order."""

    def __init__(self, prov, max_conns):
        self.p = prov
        self.max_conns = max_conns
        self.buf = b""
        self.out = collections.deque()  # slots [ready, conn, bytes, close_after]
        self.transport = None
        self.closing = False

    def connection_made(self, transport):
        self.transport = transport
        self.p.open += 1
        self.p.stats["connections"] += 1
        self.p.stats["max_open_connections"] = max(self.p.stats["max_open_connections"],
                                                   self.p.open)
        if self.p.open > self.max_conns:
            self.p.stats["refused_connections"] += 1
            self.closing = True
            transport.close()

    def connection_lost(self, exc):
        self.p.open -= 1
        self.closing = True
        for slot in self.out:
            slot[1] = None  # still due; fire() finds nobody to answer
        self.out.clear()

    def answer(self, status, body, close, delayed):
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  413: "Payload Too Large", 431: "Request Header Fields Too Large"}[status]
        data = (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                % (status, reason.encode(), len(body), b"Connection: close\r\n" if close else b"")
                + body)
        slot = [not delayed, self, data, close]
        self.out.append(slot)
        if delayed:
            self.p.later(slot)
        else:
            self.flush()

    def flush(self):
        while self.out and self.out[0][0]:
            _, _, data, close = self.out.popleft()
            if self.closing:
                return
            self.transport.write(data)
            if close:
                self.closing = True
                self.transport.close()
                return

    def data_received(self, data):
        if self.closing:
            return
        self.buf += data
        while not self.closing:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > HEAD_MAX:
                    self.answer(431, b'{"error":"head too large"}', True, False)
                return
            head = self.buf[:end].split(b"\r\n")
            parts = head[0].split(b" ")
            if end > HEAD_MAX or len(parts) != 3:
                self.answer(431 if end > HEAD_MAX else 400, b'{"error":"bad request line"}',
                            True, False)
                return
            method, target, version = parts
            hdr = {}
            for line in head[1:]:
                k, _, v = line.partition(b":")
                hdr[k.strip().lower()] = v.strip()
            try:
                n = int(hdr.get(b"content-length", b"0"))
            except ValueError:
                n = -1
            if n < 0 or n > BODY_MAX or b"transfer-encoding" in hdr:
                self.answer(413, b'{"error":"body: Content-Length up to 64 KiB only"}', True,
                            False)
                return
            if len(self.buf) < end + 4 + n:
                return
            body = self.buf[end + 4:end + 4 + n]
            self.buf = self.buf[end + 4 + n:]
            conn_hdr = hdr.get(b"connection", b"").lower()
            close = conn_hdr == b"close" or (version == b"HTTP/1.0" and conn_hdr != b"keep-alive")
            self.request(method, target, hdr, body, close)

    def request(self, method, target, hdr, body, close):
        p = self.p
        if method == b"POST" and target == p.path:
            key = hdr.get(b"idempotency-key", b"").decode("ascii", "replace")
            status, out = p.charge(key, body)
            self.answer(status, out, close, True)
        elif method == b"GET" and target == b"/stats":
            self.answer(200, json.dumps(p.snapshot()).encode(), close, False)
        elif method == b"GET" and target == b"/charges":
            out = {k: {"payment_id": c[0], "calls": c[1]} for k, c in p.charges.items()}
            self.answer(200, json.dumps(out).encode(), close, False)
        elif target in (p.path, b"/stats", b"/charges"):
            self.answer(405, b'{"error":"method not allowed"}', close, False)
        else:
            self.answer(404, b'{"error":"not found"}', close, False)


async def serve(a):
    prov = Provider(a.delay_ms / 1000, a.path)
    loop = prov.loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(prov, a.max_connections), "127.0.0.1",
                                      a.port, backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"listening": f"127.0.0.1:{port}", "delay_ms": a.delay_ms,
                      "max_seconds": a.max_seconds}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(stop.wait(), a.max_seconds)
        why = "signal"
    except asyncio.TimeoutError:
        why = "max-seconds"
    server.close()
    print(json.dumps({"stopped": why, "after_s": round(time.monotonic() - t0, 1),
                      "stats": prov.snapshot()}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="on 127.0.0.1 (0: any free port)")
    ap.add_argument("--delay-ms", type=int, default=2000)
    ap.add_argument("--path", default="/pay")
    ap.add_argument("--max-seconds", type=float, default=900,
                    help="stop by itself after this long (default 900)")
    ap.add_argument("--max-connections", type=int, default=20000)
    a = ap.parse_args()
    if a.delay_ms < 0 or a.max_seconds <= 0 or not 0 <= a.port <= 65535:
        ap.error("--delay-ms >= 0, --max-seconds > 0, --port 0-65535")
    # one descriptor per connection: take what the hard limit allows
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.max_connections + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    asyncio.run(serve(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
