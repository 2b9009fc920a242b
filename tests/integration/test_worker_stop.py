"""Issue 14: a worker asked to stop does not wait out its long polls.

Idle, it exits within about a second however long its polls wait; busy, it
still finishes the orders it holds (within WORKER_SHUTDOWN_GRACE_MS) and exits
as soon as they are done, not when its polls would have ended.
"""
import signal
import time

import pytest

from conftest import Api, Worker
from test_resilience import paid_once, wait_log

LONG_POLL = {"WORKER_WAIT_TIME_S": "20"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_worker_exits_within_a_second(queue, procs, sig):
    w = Worker(queue, LONG_POLL)
    procs.append(w)
    wait_log(w, lambda l: l.get("msg") == "order-worker started")
    time.sleep(1.5)  # its 20 s long polls are out on the server by now
    t0 = time.monotonic()
    rc = w.stop(sig)
    took = time.monotonic() - t0
    assert rc == 0, w.text()[-2000:]
    assert took < 1.5, f"idle worker took {took:.2f} s to stop"
    abandoned = [l for l in w.lines() if l.get("msg") == "stopping: idle long polls abandoned"]
    assert abandoned and abandoned[0]["abandoned"] > 0, "no long poll was outstanding to abandon"


def test_busy_worker_finishes_held_orders_then_exits_without_waiting_for_polls(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    ids = [api.post().json()["id"] for _ in range(20)]
    w = Worker(queue, {**LONG_POLL, "PAYMENT_DELAY_MS": "2000"})
    wait_log(w, lambda l: l.get("msg") == "payment started")
    t0 = time.monotonic()
    rc = w.stop(signal.SIGTERM)
    took = time.monotonic() - t0
    assert rc == 0, w.text()[-2000:]
    held = {l["order_id"] for l in w.lines() if l.get("msg") == "payment started"}
    done = {l["order_id"] for l in w.lines() if l.get("msg") == "order processed"}
    assert held and held <= done, "the worker left orders it held unfinished"
    # the payments take 2 s; the polls would have kept it up to 20 s more
    assert took < 2 + 1.5, f"busy worker took {took:.2f} s to stop"
    paid_once(db, sorted(held))
    rows = dict(db.execute("SELECT id::text, status FROM orders WHERE id = ANY(%s::uuid[])",
                           (sorted(held),)).fetchall())
    assert set(rows.values()) == {"PROCESSED"}
    # whatever it had not taken is processed by the next worker
    w2 = Worker(queue, name="w2")
    procs.append(w2)
    for oid in ids:
        api.wait_status(oid, "PROCESSED", timeout=60)
    paid_once(db, ids)
