"""Order events on EventBridge (issue 12), end to end against LocalStack.

Each test gets a bus of its own and a customer of its own, with a rule
(source order-service, detail.order.customer_id that customer) whose target
is a fresh SQS queue, so what arrives there is what the API under test
published for this test's orders. The database is shared with other tests,
whose unsent event rows a relay sends too: the rule leaves them out, and
every assertion looks only at the test's own orders.
"""
import json
import os
import re
import socket
import threading
import time
import uuid

import boto3
import pytest
import requests

import tokens
from conftest import VALID_ORDER, Api, Worker, events_env, free_port

SOURCE = "order-service"
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture(scope="module")
def events():
    return boto3.client(
        "events",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_EVENTS"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


class Bus:
    """A bus, its rule for our source and one customer, a queue as target."""

    def __init__(self, name, target):
        self.name, self.target, self.customer = name, target, "cust-" + name

    def order(self):
        return dict(VALID_ORDER, customer_id=self.customer)


@pytest.fixture
def bus(events, sqs):
    name = "t-" + uuid.uuid4().hex[:12]
    q = sqs.create_queue(QueueName=name + "-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.create_event_bus(Name=name)
    events.put_rule(Name=name, EventBusName=name, State="ENABLED",
                    EventPattern=json.dumps({"source": [SOURCE], "detail": {
                        "order": {"customer_id": ["cust-" + name]}}}))
    r = events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])
    assert r["FailedEntryCount"] == 0, r
    yield Bus(name, q)
    for cleanup in (
        lambda: events.remove_targets(Rule=name, EventBusName=name, Ids=["q"]),
        lambda: events.delete_rule(Name=name, EventBusName=name),
        lambda: events.delete_event_bus(Name=name),
        lambda: sqs.delete_queue(QueueUrl=q),
    ):
        try:
            cleanup()
        except Exception:
            pass


class Collector:
    """Every event that reached a target queue, read as EventBridge delivers it."""

    def __init__(self, sqs, queue_url):
        self.sqs, self.q, self.events = sqs, queue_url, []

    def poll(self, wait=1):
        got = self.sqs.receive_message(QueueUrl=self.q, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=wait)
        for m in got.get("Messages", []):
            self.events.append(json.loads(m["Body"]))
            self.sqs.delete_message(QueueUrl=self.q, ReceiptHandle=m["ReceiptHandle"])
        return len(got.get("Messages", []))

    def of(self, order_ids):
        return [e for e in self.events if e["detail"]["order"]["id"] in order_ids]

    def until(self, order_ids, want, timeout=60):
        """Polls until the (order id, detail-type) pairs in want have all arrived."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            seen = {(e["detail"]["order"]["id"], e["detail-type"]) for e in self.of(order_ids)}
            if want <= seen:
                return self.of(order_ids)
            self.poll()
        raise AssertionError(f"missing events: {sorted(want - seen)}")

    def drain(self):
        """Reads until two empty polls in a row: whatever was sent has arrived."""
        empty = 0
        while empty < 2:
            empty = empty + 1 if self.poll() == 0 else 0


def metric(api, name):
    text = requests.get(api.metrics_url, timeout=5).text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def check_event(e, detail_type, order, correlation_id):
    assert e["source"] == SOURCE
    assert e["detail-type"] == detail_type
    d = e["detail"]
    assert d["version"] == 1
    assert uuid.UUID(d["id"])
    assert d["correlation_id"] == correlation_id
    # the order exactly as GET /orders/{id} showed it after the change, keys in its order
    assert d["order"] == order, (d["order"], order)
    assert list(d["order"]) == list(order)


def test_created_then_processed_events_carry_the_order(bus, sqs, queue, db, procs):
    name, target = bus.name, bus.target
    api = Api(queue, extra_env=events_env(name))
    procs.append(api)
    procs.append(Worker(queue))
    cid = "events-" + uuid.uuid4().hex[:8]
    r = api.post(bus.order(), headers={"X-Correlation-Id": cid, "X-Amzn-Trace-Id": TRACE})
    assert r.status_code == 201, r.text
    created = r.json()
    oid = created["id"]
    processed = api.wait_status(oid, "PROCESSED")

    got = Collector(sqs, target).until({oid}, {(oid, "order.created"), (oid, "order.processed")})
    by_type = {e["detail-type"]: e for e in got}
    check_event(by_type["order.created"], "order.created", created, cid)
    check_event(by_type["order.processed"], "order.processed", processed, cid)
    assert by_type["order.created"]["detail"]["id"] != by_type["order.processed"]["detail"]["id"]

    # the outbox rows: Detail.id is the row id, marked sent with the Detail sent;
    # both events carry the trace header the order was created with
    def rows():
        return db.execute(
            "SELECT id::text, detail_type, sent_at IS NOT NULL, detail,"
            " coalesce(trace_header, order_trace_header(order_id))"
            " FROM event_outbox WHERE order_id = %s", (oid,)).fetchall()
    deadline = time.time() + 10
    while not all(r[2] for r in rows()) and time.time() < deadline:
        time.sleep(0.1)
    assert sorted((r[0], r[1], json.loads(r[3]) if r[3] else None) for r in rows()) == sorted(
        (e["detail"]["id"], e["detail-type"], e["detail"]) for e in got)
    assert {r[4] for r in rows()} == {TRACE}
    assert metric(api, "order_api_events_published_total") >= 2


def test_declined_payment_publishes_order_failed(bus, sqs, queue, procs):
    api = Api(queue, extra_env=events_env(bus.name))
    procs.append(api)
    procs.append(Worker(queue, {"PAYMENT_DECLINE_RATE": "1.0", "PAYMENT_DELAY_MS": "50"}))
    cid = "failed-" + uuid.uuid4().hex[:8]
    created = api.post(bus.order(), headers={"X-Correlation-Id": cid}).json()
    oid = created["id"]
    failed = api.wait_status(oid, "FAILED")
    assert failed["failure_reason"] == "card_declined"

    got = Collector(sqs, bus.target).until({oid}, {(oid, "order.created"), (oid, "order.failed")})
    by_type = {e["detail-type"]: e for e in got}
    check_event(by_type["order.failed"], "order.failed", failed, cid)
    # a declined order is never processed: no order.processed event follows
    assert "order.processed" not in by_type


def test_cancel_publishes_order_canceled(bus, sqs, queue, procs):
    name, target = bus.name, bus.target
    api = Api(queue, extra_env=events_env(name))  # no worker: the order stays PENDING
    procs.append(api)
    cid = "cancel-" + uuid.uuid4().hex[:8]
    created = api.post(bus.order(), headers={"X-Correlation-Id": cid}).json()
    oid = created["id"]
    r = requests.post(f"{api.url}/orders/{oid}/cancel", timeout=10,
                      headers={**tokens.admin_headers(), "X-Correlation-Id": "other-request"})
    assert r.status_code == 200, r.text
    canceled = r.json()
    assert canceled["status"] == "CANCELED" and "canceled_at" in canceled

    got = Collector(sqs, target).until({oid}, {(oid, "order.created"), (oid, "order.canceled")})
    by_type = {e["detail-type"]: e for e in got}
    check_event(by_type["order.created"], "order.created", created, cid)
    # the order's correlation id, not the cancel request's
    check_event(by_type["order.canceled"], "order.canceled", canceled, cid)
    # canceling again changes nothing, so it publishes nothing
    r = requests.post(f"{api.url}/orders/{oid}/cancel", headers=tokens.admin_headers(), timeout=10)
    assert r.status_code == 200


class Proxy:
    """A TCP forwarder on a fixed loopback port that can be taken down and
    brought back: EventBridge unreachable (connection refused) while down."""

    def __init__(self, target_port):
        self.port, self.target = free_port(), target_port
        self.lsock, self.conns, self.lock = None, [], threading.Lock()

    def up(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(16)
        threading.Thread(target=self._accept, args=(self.lsock,), daemon=True).start()

    def down(self):
        if self.lsock:
            self.lsock.close()
            self.lsock = None
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
            self.conns = []

    def _accept(self, lsock):
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_eventbridge_unreachable_then_back_every_event_once(bus, sqs, queue, db, procs):
    name, target = bus.name, bus.target
    ls_port = int(os.environ["AWS_ENDPOINT_URL_EVENTS"].rsplit(":", 1)[1])
    proxy = Proxy(ls_port)  # down: nothing listens on its port yet
    api = Api(queue, extra_env=events_env(name, f"http://127.0.0.1:{proxy.port}"))
    procs.append(api)
    procs.append(Worker(queue))
    try:
        ids = [api.post(bus.order()).json()["id"] for _ in range(6)]
        r = requests.post(f"{api.url}/orders/{ids[0]}/cancel", headers=tokens.admin_headers(),
                          timeout=10)
        if r.json()["status"] == "CANCELED":
            want = {(ids[0], "order.created"), (ids[0], "order.canceled")}
        else:  # the worker paid it first
            want = {(ids[0], "order.created"), (ids[0], "order.processed")}
        for oid in ids[1:]:
            api.wait_status(oid, "PROCESSED")
            want |= {(oid, "order.created"), (oid, "order.processed")}
        # every event was tried, failed and is waiting for its retry
        deadline = time.time() + 30
        while time.time() < deadline:
            rows = db.execute(
                "SELECT count(*) FILTER (WHERE attempts > 0 AND last_error <> ''"
                " AND sent_at IS NULL), count(*) FROM event_outbox WHERE order_id = ANY(%s::uuid[])",
                (ids,)).fetchone()
            if rows[0] == rows[1] == len(want):
                break
            time.sleep(0.2)
        assert rows[0] == rows[1] == len(want), rows
        assert metric(api, "order_api_event_publish_errors_total") >= len(want)

        proxy.up()
        c = Collector(sqs, target)
        c.until(set(ids), want, timeout=90)
        # wait until the outbox says every row is sent, then read what is left
        deadline = time.time() + 30
        while db.execute("SELECT count(*) FROM event_outbox WHERE order_id = ANY(%s::uuid[])"
                         " AND sent_at IS NULL", (ids,)).fetchone()[0] and time.time() < deadline:
            time.sleep(0.2)
        c.drain()
    finally:
        proxy.down()
    got = c.of(set(ids))
    # exactly one event per change once deduplicated by Detail.id
    by_id = {e["detail"]["id"]: e for e in got}
    changes = [(e["detail"]["order"]["id"], e["detail-type"]) for e in by_id.values()]
    assert sorted(changes) == sorted(want)
    rows = db.execute("SELECT id::text FROM event_outbox WHERE order_id = ANY(%s::uuid[])",
                      (ids,)).fetchall()
    assert {r[0] for r in rows} == set(by_id)


def test_events_off_without_a_bus_name(queue, db, procs):
    api = Api(queue)  # EVENT_BUS_NAME unset
    procs.append(api)
    procs.append(Worker(queue))
    oid = api.post().json()["id"]
    api.wait_status(oid, "PROCESSED")
    assert metric(api, "order_api_events_published_total") == 0
    assert api.stop() == 0
    off = [ln for ln in api.lines() if "order events off" in ln.get("msg", "")]
    assert len(off) == 1, off
    assert "EVENT_BUS_NAME" in off[0]["msg"]
    # the changes are recorded, and nothing tried to send them
    rows = db.execute("SELECT detail_type, attempts, sent_at FROM event_outbox WHERE order_id = %s",
                      (oid,)).fetchall()
    assert sorted(r[0] for r in rows) == ["order.created", "order.processed"]
    assert all(r[1] == 0 and r[2] is None for r in rows), rows


def test_an_event_eventbridge_cannot_take_is_parked_not_retried(bus, sqs, queue, db, procs):
    name, target = bus.name, bus.target
    api = Api(queue, extra_env=events_env(name))
    procs.append(api)
    oid = api.post(bus.order()).json()["id"]
    bad = str(uuid.uuid4())
    # a trace header over EventBridge's 500 bytes: PutEvents can never accept it
    db.execute("INSERT INTO event_outbox (id, order_id, detail_type, trace_header)"
               " VALUES (%s, %s, 'order.created', %s)", (bad, oid, "Root=" + "1" * 600))
    deadline = time.time() + 30
    row = None
    while time.time() < deadline:
        row = db.execute("SELECT rejected_at IS NOT NULL, sent_at, attempts, last_error"
                         " FROM event_outbox WHERE id = %s", (bad,)).fetchone()
        if row[0]:
            break
        time.sleep(0.1)
    assert row[0] and row[1] is None and row[2] == 1, row
    assert "TraceHeader" in row[3]
    assert metric(api, "order_api_events_rejected_total") >= 1
    # the order's own event still went out
    Collector(sqs, target).until({oid}, {(oid, "order.created")})
    assert api.stop() == 0
    parked = [ln for ln in api.lines() if ln.get("message_id") == bad]
    assert len(parked) == 1 and parked[0]["level"] == "error", parked
    assert parked[0]["order_id"] == oid


def test_two_api_instances_send_each_event_once(bus, sqs, queue, db, procs):
    """SKIP LOCKED claims: two relays on one outbox never send the same row."""
    name, target = bus.name, bus.target
    apis = [Api(queue, extra_env=events_env(name), name=f"order-api-{i}") for i in range(2)]
    procs.extend(apis)
    ids = [apis[i % 2].post(bus.order()).json()["id"] for i in range(30)]
    c = Collector(sqs, target)
    c.until(set(ids), {(oid, "order.created") for oid in ids})
    deadline = time.time() + 30
    while db.execute("SELECT count(*) FROM event_outbox WHERE order_id = ANY(%s::uuid[])"
                     " AND sent_at IS NULL", (ids,)).fetchone()[0] and time.time() < deadline:
        time.sleep(0.2)
    c.drain()
    got = c.of(set(ids))
    assert len(got) == 30, sorted(e["detail"]["id"] for e in got)  # no event twice
    assert len(c.events) == 30  # the rule let through this test's customer only
    assert {e["detail"]["order"]["id"] for e in got} == set(ids)
    for api in apis:
        assert api.stop() == 0
    # both relays had the chance to send: each published what it claimed, together all
    assert sum(sum(1 for ln in a.lines() if ln.get("msg") == "order event published: order.created"
                   and ln.get("order_id") in ids) for a in apis) == 30

