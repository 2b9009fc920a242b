"""Issue 2: the order flow end to end, and every documented error status."""
import json
import time
import uuid
from datetime import datetime

import psycopg
import requests

import tokens
from conftest import VALID_ORDER, Api, Worker, base_env


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_order_goes_pending_then_processed_with_one_correlation_id(queue, sqs, db, procs):
    api = Api(queue)
    procs.append(api)
    cid = "flow-" + uuid.uuid4().hex[:8]
    r = api.post(headers={"X-Correlation-Id": cid})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "PENDING"
    assert order["total_cents"] == 3000
    assert r.headers["Location"] == f"/orders/{order['id']}"
    assert r.headers["X-Correlation-Id"] == cid
    assert order["correlation_id"] == cid

    # The message is on the queue with the correlation id attribute.
    msgs = []
    deadline = time.time() + 10
    while not msgs and time.time() < deadline:
        msgs = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1,
            MessageAttributeNames=["All"], VisibilityTimeout=1,
        ).get("Messages", [])
    assert msgs, "no message reached the queue"
    body = json.loads(msgs[0]["Body"])
    assert body == {"type": "order.created", "version": 1, "order_id": order["id"]}
    assert msgs[0]["MessageAttributes"]["correlation_id"]["StringValue"] == cid
    sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=msgs[0]["ReceiptHandle"], VisibilityTimeout=0
    )

    row = db.execute(
        "SELECT status, correlation_id FROM orders WHERE id = %s", (order["id"],)
    ).fetchone()
    assert row == ("PENDING", cid)

    worker = Worker(queue, {"PAYMENT_DELAY_MS": "2000"})
    procs.append(worker)
    done = api.wait_status(order["id"], "PROCESSED", timeout=30)
    elapsed = (ts(done["processed_at"]) - ts(done["created_at"])).total_seconds()
    assert elapsed >= 2.0, f"processed after {elapsed}s, sooner than PAYMENT_DELAY_MS"
    assert done["correlation_id"] == cid
    assert db.execute(
        "SELECT count(*) FROM payments WHERE order_id = %s", (order["id"],)
    ).fetchone()[0] == 1

    assert worker.stop() == 0
    lines = [l for l in worker.lines() if l.get("order_id") == order["id"]]
    assert any(l["msg"] == "order processed" for l in lines), worker.text()
    assert all(l["correlation_id"] == cid for l in lines)
    assert api.stop() == 0


def test_timeline_reads_received_before_enqueued(queue, db, procs):
    """ENQUEUED carried the send's start in whole milliseconds, RECEIVED the
    insert's time in microseconds: within one millisecond ENQUEUED sorted
    first (seen in CI through the README's timeline example)."""
    api = Api(queue)
    procs.append(api)
    ids = [api.post().json()["id"] for _ in range(200)]
    deadline = time.time() + 30
    rows = []
    while time.time() < deadline:
        rows = db.execute(
            "SELECT order_id::text, array_agg(step ORDER BY at, id) FROM order_events"
            " WHERE order_id = ANY(%s::uuid[]) GROUP BY order_id", (ids,)).fetchall()
        if len(rows) == len(ids) and all("ENQUEUED" in steps for _, steps in rows):
            break
        time.sleep(0.2)
    assert len(rows) == len(ids)
    wrong = [(oid, steps) for oid, steps in rows if steps[:2] != ["RECEIVED", "ENQUEUED"]]
    assert not wrong, wrong[:3]


def test_invalid_correlation_id_is_replaced(queue, procs):
    api = Api(queue)
    procs.append(api)
    r = api.post(headers={"X-Correlation-Id": "bad id with spaces"})
    assert r.status_code == 201
    cid = r.headers["X-Correlation-Id"]
    assert cid != "bad id with spaces"
    uuid.UUID(cid)
    assert r.json()["correlation_id"] == cid


def test_two_workers_fifty_orders_each_processed_once(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    w1, w2 = Worker(queue, name="w1"), Worker(queue, name="w2")
    procs.extend([w1, w2])
    ids = []
    for i in range(50):
        r = api.post(headers={"X-Correlation-Id": f"fifty-{i}"})
        assert r.status_code == 201
        ids.append(r.json()["id"])
    for oid in ids:
        api.wait_status(oid, "PROCESSED", timeout=60)
    rows = db.execute(
        "SELECT order_id::text, count(*) FROM payments WHERE order_id = ANY(%s::uuid[])"
        " GROUP BY order_id",
        (ids,),
    ).fetchall()
    assert len(rows) == 50 and all(c == 1 for _, c in rows)
    assert w1.stop() == 0 and w2.stop() == 0
    processed = [
        l["order_id"]
        for w in (w1, w2)
        for l in w.lines()
        if l.get("msg") == "order processed" and l.get("order_id") in ids
    ]
    assert sorted(processed) == sorted(ids), "each order processed exactly once across workers"


def test_ten_messages_are_paid_concurrently(queue, procs):
    api = Api(queue)
    procs.append(api)
    ids = [api.post().json()["id"] for _ in range(10)]
    w = Worker(queue, {"PAYMENT_DELAY_MS": "2000"})
    procs.append(w)
    start = time.time()
    for oid in ids:
        api.wait_status(oid, "PROCESSED", timeout=30)
    took = time.time() - start
    assert took < 8, f"10 orders took {took:.1f}s: payments are not concurrent"


def test_get_order_and_health(queue, procs):
    api = Api(queue)
    procs.append(api)
    oid = api.post().json()["id"]
    r = api.get(f"/orders/{oid}")
    assert r.status_code == 200 and r.json()["id"] == oid
    assert api.get(f"/orders/{oid.upper()}").json()["id"] == oid
    assert api.get("/healthz").status_code == 200
    r = api.get("/readyz")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def err(r, status, code, field=None):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    e = r.json()["error"]
    assert e["code"] == code, e
    assert e["message"]
    if field:
        assert any(d["field"] == field for d in e["details"]), e
    return e


def test_each_documented_error_status(queue, db, procs):
    api = Api(queue)
    procs.append(api)
    err(api.post(b"{not json"), 400, "invalid_json", "body")
    err(api.get("/orders/not-a-uuid"), 400, "invalid_id", "id")
    err(api.get(f"/orders/{uuid.uuid4()}"), 404, "not_found", "id")
    err(api.get("/nope"), 404, "not_found")
    r = requests.delete(api.url + "/orders", timeout=5)
    err(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    err(api.post(b"x" * 70000), 413, "payload_too_large", "body")
    err(api.post(headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type",
        "Content-Type")
    err(api.post({**VALID_ORDER, "currency": "brl"}), 422, "validation_failed", "currency")

    # 409: cancel an order that is already PROCESSED
    oid = api.post().json()["id"]
    db.execute("UPDATE orders SET status = 'PROCESSED' WHERE id = %s", (oid,))
    err(requests.post(f"{api.url}/orders/{oid}/cancel", headers=tokens.admin_headers(), timeout=5), 409, "conflict", "status")

    # 503: the database is unreachable
    down = Api(queue, {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, name="api-nodb",
               ready="/healthz")
    procs.append(down)
    r = down.post()
    err(r, 503, "unavailable")
    assert r.headers["Retry-After"]
    r = down.get("/readyz")
    assert r.status_code == 503 and r.headers["Retry-After"]

    # 500: the database answers but the schema is missing
    admin_url = base_env(queue)["DATABASE_URL"]
    empty = "orders_empty_" + uuid.uuid4().hex[:6]
    db.execute(f'CREATE DATABASE "{empty}"')
    try:
        url = psycopg.conninfo.make_conninfo(admin_url, dbname=empty)
        broken = Api(queue, {"DATABASE_URL": url}, name="api-noschema")
        procs.append(broken)
        err(broken.post(), 500, "internal")
        assert broken.stop() == 0
    finally:
        db.execute(f'DROP DATABASE "{empty}" WITH (FORCE)')
