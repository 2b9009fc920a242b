"""Issue 3: no order lost, none paid twice, under each single failure."""
import json
import os
import signal
import threading
import time
import uuid

import psycopg
import requests

import tokens
from conftest import VALID_ORDER, Api, Worker, dlq_ids, make_queue, services


def paid_once(db, ids):
    rows = dict(
        db.execute(
            "SELECT order_id::text, count(*) FROM payments WHERE order_id = ANY(%s::uuid[])"
            " GROUP BY order_id",
            (ids,),
        ).fetchall()
    )
    assert set(rows) == set(ids), f"unpaid: {set(ids) - set(rows)}"
    assert all(c == 1 for c in rows.values()), {k: c for k, c in rows.items() if c != 1}


def wait_log(proc, predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(predicate(l) for l in proc.lines()):
            return
        time.sleep(0.1)
    raise AssertionError(f"log line not seen in {proc.name}: {proc.text()[-2000:]}")


def test_kill9_worker_mid_batch_loses_nothing(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    ids = [api.post().json()["id"] for _ in range(20)]
    a = Worker(queue, {"PAYMENT_DELAY_MS": "4000", "WORKER_VISIBILITY_TIMEOUT_S": "5"}, name="a")
    wait_log(a, lambda l: l.get("msg") == "payment started")
    a.kill9()
    b = Worker(queue, {"PAYMENT_DELAY_MS": "200"}, name="b")
    procs.append(b)
    for oid in ids:
        api.wait_status(oid, "PROCESSED", timeout=60)
    paid_once(db, ids)


def test_duplicate_message_pays_once(queue, sqs, db, procs):
    api = Api(queue)
    procs.append(api)
    oid = api.post().json()["id"]
    body = json.dumps({"type": "order.created", "version": 1, "order_id": oid})
    for _ in range(2):  # the same order delivered twice more
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    w = Worker(queue)
    procs.append(w)
    api.wait_status(oid, "PROCESSED")
    deadline = time.time() + 20
    while time.time() < deadline:
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if attrs["ApproximateNumberOfMessages"] == "0" and attrs[
            "ApproximateNumberOfMessagesNotVisible"
        ] == "0":
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"duplicates not acknowledged: {attrs}")
    paid_once(db, [oid])
    assert w.stop() == 0
    processed = [l for l in w.lines() if l.get("order_id") == oid and l["msg"] == "order processed"]
    assert len(processed) == 1


def test_sigterm_busy_worker_finishes_and_exits_zero(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    ids = [api.post().json()["id"] for _ in range(30)]
    w = Worker(queue, {"PAYMENT_DELAY_MS": "1500"})
    wait_log(w, lambda l: l.get("msg") == "payment started")
    t0 = time.time()
    assert w.stop(signal.SIGTERM) == 0
    assert time.time() - t0 < 10
    held = {l["order_id"] for l in w.lines() if l.get("msg") == "payment started"}
    done = {l["order_id"] for l in w.lines() if l.get("msg") == "order processed"}
    assert held and held <= done, "the worker left orders it held unfinished"
    w2 = Worker(queue, name="w2")
    procs.append(w2)
    for oid in ids:
        api.wait_status(oid, "PROCESSED", timeout=60)
    paid_once(db, ids)


def test_sigterm_after_grace_returns_messages_at_once(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    ids = [api.post().json()["id"] for _ in range(5)]
    w = Worker(queue, {"PAYMENT_DELAY_MS": "60000", "WORKER_SHUTDOWN_GRACE_MS": "300"})
    wait_log(w, lambda l: l.get("msg") == "payment started")
    time.sleep(0.5)
    assert w.stop(signal.SIGTERM) == 0
    assert any("returning unfinished messages" in l.get("msg", "") for l in w.lines())
    # The queue's visibility timeout is 30 s: orders done well before it prove the release.
    t0 = time.time()
    w2 = Worker(queue, name="w2")
    procs.append(w2)
    for oid in ids:
        api.wait_status(oid, "PROCESSED", timeout=20)
    assert time.time() - t0 < 20
    paid_once(db, ids)


def test_sqs_outage_accepts_orders_and_delivers_after(sqs, db, procs):
    name = "t-" + uuid.uuid4().hex[:12]
    queue, _ = make_queue(sqs, name=name)
    api = Api(queue, {"OUTBOX_RELAY_INTERVAL_MS": "300"})
    procs.append(api)
    w = Worker(queue)
    procs.append(w)
    services("stop-sqs")
    try:
        ids = []
        for _ in range(10):
            r = api.post()
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        time.sleep(2)
        assert w.alive() and api.alive()
    finally:
        services("start-sqs")
        make_queue(sqs, name=name)  # LocalStack keeps queues in memory: recreate ours
    for oid in ids:
        api.wait_status(oid, "PROCESSED", timeout=90)
    paid_once(db, ids)
    m = requests.get(api.metrics_url, timeout=5).text
    assert "order_api_sqs_errors_total" in m


def test_postgres_restart_under_load(queue, db, procs):
    api = Api(queue, {"OUTBOX_RELAY_INTERVAL_MS": "300"})
    procs.append(api)
    w = Worker(queue)
    procs.append(w)
    accepted, statuses, stop = [], [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                r = api.post()
                statuses.append(r.status_code)
                if r.status_code == 201:
                    accepted.append(r.json()["id"])
                elif r.status_code == 503:
                    assert r.headers.get("Retry-After")
            except requests.RequestException:
                statuses.append(0)
            time.sleep(0.02)

    t = threading.Thread(target=load)
    t.start()
    time.sleep(1)
    services("restart-pg")
    time.sleep(3)
    stop.set()
    t.join()
    assert set(statuses) <= {201, 503}, set(statuses)
    assert api.alive() and w.alive()
    # recovered without a restart
    r = api.post()
    assert r.status_code == 201
    accepted.append(r.json()["id"])
    for oid in accepted:
        api.wait_status(oid, "PROCESSED", timeout=90)
    with __import__("psycopg").connect(db.info.dsn, autocommit=True) as fresh:
        paid_once(fresh, accepted)


def test_poison_messages_reach_the_dead_letter_queue(queues, sqs, procs):
    queue, dlq = queues
    bodies = [
        "this is not json",
        json.dumps({"type": "order.shipped", "version": 1, "order_id": str(uuid.uuid4())}),
        json.dumps({"type": "order.created", "version": 9, "order_id": str(uuid.uuid4())}),
        json.dumps({"type": "order.created", "version": 1, "order_id": str(uuid.uuid4())}),
    ]
    ids = [sqs.send_message(QueueUrl=queue, MessageBody=b)["MessageId"] for b in bodies]
    w = Worker(queue, {"WORKER_POISON_DELAY_S": "0"})
    procs.append(w)
    assert dlq_ids(sqs, dlq, set(ids)) == set(ids)
    assert w.alive()
    logged = {l.get("message_id") for l in w.lines() if "poison" in l.get("msg", "")}
    assert set(ids) <= logged


def test_cancel_pending_order_is_never_paid(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    oid = api.post().json()["id"]
    r = requests.post(f"{api.url}/orders/{oid}/cancel", headers=tokens.admin_headers(), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "CANCELED"
    assert requests.post(f"{api.url}/orders/{oid}/cancel", headers=tokens.admin_headers(), timeout=5).status_code == 200
    assert requests.post(f"{api.url}/orders/{uuid.uuid4()}/cancel", headers=tokens.admin_headers(), timeout=5).status_code == 404
    w = Worker(queue)
    procs.append(w)
    wait_log(w, lambda l: l.get("order_id") == oid and "not paid" in l.get("msg", ""))
    assert api.get(f"/orders/{oid}").json()["status"] == "CANCELED"
    assert db.execute("SELECT count(*) FROM payments WHERE order_id = %s", (oid,)).fetchone()[0] == 0


def test_cancel_racing_payment_never_both(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    ids = [api.post().json()["id"] for _ in range(40)]
    w = Worker(queue, {"PAYMENT_DELAY_MS": "400"})
    procs.append(w)
    results = {}
    for i, oid in enumerate(ids):
        time.sleep(0.02)
        results[oid] = requests.post(f"{api.url}/orders/{oid}/cancel", headers=tokens.admin_headers(), timeout=5).status_code
    for oid in ids:
        deadline = time.time() + 30
        while api.get(f"/orders/{oid}").json()["status"] == "PENDING" and time.time() < deadline:
            time.sleep(0.1)
    rows = db.execute(
        "SELECT o.id::text, o.status, count(p.id) FROM orders o LEFT JOIN payments p"
        " ON p.order_id = o.id WHERE o.id = ANY(%s::uuid[]) GROUP BY o.id, o.status",
        (ids,),
    ).fetchall()
    for oid, status, payments in rows:
        if status == "CANCELED":
            assert payments == 0 and results[oid] == 200
        else:
            assert status == "PROCESSED" and payments == 1 and results[oid] == 409


def test_idempotency_key(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    key = "idem-" + uuid.uuid4().hex
    r1 = api.post(headers={"Idempotency-Key": key})
    assert r1.status_code == 201
    reordered = json.dumps({"items": VALID_ORDER["items"], "currency": "BRL",
                            "customer_id": "c-123"})
    r2 = api.post(reordered, headers={"Idempotency-Key": key})
    assert r2.status_code == 201 and r2.json() == r1.json()
    assert r2.headers.get("Idempotent-Replayed") == "true"
    r3 = api.post({**VALID_ORDER, "customer_id": "other"}, headers={"Idempotency-Key": key})
    assert r3.status_code == 422 and r3.json()["error"]["code"] == "idempotency_key_reused"
    n = db.execute("SELECT count(*) FROM idempotency_keys k JOIN orders o ON o.id = k.order_id"
                   " WHERE k.key = %s", (key,)).fetchone()[0]
    assert n == 1

    key2 = "race-" + uuid.uuid4().hex
    out = []
    ts = [threading.Thread(target=lambda: out.append(api.post(headers={"Idempotency-Key": key2})))
          for _ in range(10)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert {r.status_code for r in out} == {201}
    assert len({r.json()["id"] for r in out}) == 1


def test_api_sigterm_drains_and_exits_zero(queue, procs):
    api = Api(queue)
    results = []

    def post():
        try:
            results.append(api.post().status_code)
        except requests.RequestException as e:
            results.append(str(e))

    ts = [threading.Thread(target=post) for _ in range(20)]
    [t.start() for t in ts]
    time.sleep(0.05)
    rc = api.stop(signal.SIGTERM)
    [t.join() for t in ts]
    assert rc == 0
    # every request that reached the server got a full answer
    assert all(r == 201 or isinstance(r, str) for r in results), results


def test_long_payment_extends_visibility_instead_of_redelivery(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    oid = api.post().json()["id"]
    # The payment outlasts the visibility timeout asked for on receive (5 s).
    w = Worker(queue, {"PAYMENT_DELAY_MS": "8000", "WORKER_VISIBILITY_TIMEOUT_S": "5"})
    procs.append(w)
    api.wait_status(oid, "PROCESSED", timeout=30)
    assert any(l.get("msg") == "extending visibility of held messages" for l in w.lines())
    delivered = db.execute(
        "SELECT count(*) FROM order_events WHERE order_id = %s AND step = 'DELIVERED'", (oid,)
    ).fetchone()[0]
    assert delivered == 1, "the message was redelivered while its payment ran"
    paid_once(db, [oid])


def test_fault3_sigterm_with_post_waiting_on_database_answers_503_and_exits_zero(queue, db, procs):
    """Issue 10, fault 3: a POST suspended past API_SHUTDOWN_GRACE_MS made
    MHD_stop_daemon() abort the process (exit 134). It must be answered 503
    and the API must exit 0."""
    api = Api(queue, {"API_SHUTDOWN_GRACE_MS": "300"})
    results = []
    lock = psycopg.connect(os.environ["DATABASE_URL"])
    try:
        lock.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # the INSERT now waits

        def post():
            try:
                r = api.post()
                results.append((r.status_code, r.headers.get("Retry-After"), r.json()))
            except requests.RequestException as e:
                results.append(str(e))

        t = threading.Thread(target=post)
        t.start()
        time.sleep(0.5)  # the POST is suspended, its INSERT blocked on the lock
        t0 = time.time()
        rc = api.stop(signal.SIGTERM, timeout=20)
        t.join(10)
        assert rc == 0, api.text()[-2000:]
        assert time.time() - t0 < 10
        assert len(results) == 1 and not isinstance(results[0], str), results
        status, retry_after, body = results[0]
        assert status == 503 and retry_after and body["error"]["code"] == "unavailable", results
    finally:
        lock.rollback()
        lock.close()
