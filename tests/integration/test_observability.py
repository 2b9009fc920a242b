"""Issue 4: timeline, trace propagation, logs, secrets, metrics, listing, CLI."""
import os
import subprocess
import threading
import time
import uuid

import requests

import tokens

from conftest import VALID_ORDER, BIN, Api, Worker, base_env, free_port


def test_timeline_records_every_step_in_order(queue, procs):
    api = Api(queue)
    procs.append(api)
    w = Worker(queue)
    procs.append(w)
    oid = api.post(headers={"X-Correlation-Id": "timeline-1"}).json()["id"]
    api.wait_status(oid, "PROCESSED")
    ev = api.get(f"/orders/{oid}/events").json()
    assert ev["order_id"] == oid
    steps = [e["step"] for e in ev["events"]]
    assert steps == ["RECEIVED", "ENQUEUED", "DELIVERED", "PAYMENT_STARTED",
                     "PAYMENT_APPROVED", "PROCESSED"], steps
    by = {e["step"]: e for e in ev["events"]}
    assert by["RECEIVED"]["actor"].startswith("order-api/")
    assert by["PROCESSED"]["actor"].startswith("order-worker/")
    assert by["ENQUEUED"]["detail"]["message_id"]
    assert by["DELIVERED"]["detail"]["receive_count"] == 1
    assert all(e["correlation_id"] == "timeline-1" for e in ev["events"])
    ats = [e["at"] for e in ev["events"]]
    assert ats == sorted(ats)
    assert api.get(f"/orders/{uuid.uuid4()}/events").status_code == 404


def test_trace_headers_propagate_to_the_worker(queue, sqs, procs):
    api = Api(queue)
    procs.append(api)
    xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    oid = api.post(headers={"X-Amzn-Trace-Id": xray, "traceparent": tp}).json()["id"]
    m = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, MessageAttributeNames=["All"],
                            AttributeNames=["All"], VisibilityTimeout=1)["Messages"][0]
    assert m["Attributes"]["AWSTraceHeader"] == xray
    sent_tp = m["MessageAttributes"]["traceparent"]["StringValue"]
    assert sent_tp.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"],
                                  VisibilityTimeout=0)
    w = Worker(queue)
    procs.append(w)
    api.wait_status(oid, "PROCESSED")
    assert w.stop() == 0 and api.stop() == 0
    for p in (api, w):
        lines = [l for l in p.lines() if l.get("order_id") == oid]
        assert lines
        assert any(l.get("trace_id") == xray for l in lines), p.name
        assert any(l.get("traceparent", "").startswith("00-4bf92f3577b34da6a3ce929d0e0e4736")
                   for l in lines), p.name


def test_api_starts_a_trace_when_none_comes_in(queue, sqs, procs):
    api = Api(queue)
    procs.append(api)
    api.post()
    m = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, MessageAttributeNames=["All"],
                            AttributeNames=["All"])["Messages"][0]
    assert m["Attributes"]["AWSTraceHeader"].startswith("Root=1-")
    assert len(m["MessageAttributes"]["traceparent"]["StringValue"]) == 55


def test_log_lines_carry_ids_and_never_secrets(queue, procs):
    secret = "wJalrXUtnFEMI-K7MDENG-SECRET-" + uuid.uuid4().hex
    token = "SESSION-TOKEN-" + uuid.uuid4().hex
    dbpw = "db-pw-" + uuid.uuid4().hex
    url = os.environ["DATABASE_URL"]
    sep = "&" if "?" in url else "?"
    env = {"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token,
           "DATABASE_URL": url + sep + "password=" + dbpw, "LOG_LEVEL": "debug"}
    api = Api(queue, env)
    procs.append(api)
    w = Worker(queue, env)
    procs.append(w)
    oid = api.post(headers={"X-Correlation-Id": "secrets-1"}).json()["id"]
    api.post(b"{bad json")
    api.wait_status(oid, "PROCESSED")
    # an SQS error path too: a queue that does not exist
    bad = Api(queue + "-missing", env, name="api-badqueue")
    procs.append(bad)
    bad.post()
    time.sleep(1)
    for p in (api, w, bad):
        assert p.stop() == 0
        text = p.text()
        for s in (secret, token, dbpw):
            assert s not in text, f"{p.name} logged a secret"
        for l in p.lines():
            assert "unparsed" not in l, l
            assert l["instance"] and l["version"] and l["service"] and l["ts"] and l["level"]
            if "order_id" in l:
                assert l.get("correlation_id"), l


def test_one_access_log_line_per_request(queue, procs):
    """method, route template, status, duration, bytes, correlation id and the
    caller's principal; never the token, never the raw path with its id."""
    api = Api(queue)
    procs.append(api)
    token = tokens.KEYS.mint(sub="c-123", scope="orders/read orders/write")
    hdr = {"Authorization": "Bearer " + token, "X-Correlation-Id": "access-1"}
    r = api.post(headers=hdr)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    assert requests.get(f"{api.url}/orders/{oid}", headers=hdr, timeout=10).status_code == 200
    assert requests.get(api.url + "/orders", timeout=10).status_code == 401
    assert api.stop() == 0
    assert token not in api.text()
    access = [l for l in api.lines() if l.get("msg") == "request"]
    mine = [l for l in access if l.get("correlation_id") == "access-1"]
    assert [(l["method"], l["route"], l["status"]) for l in mine] == [
        ("POST", "/orders", 201), ("GET", "/orders/{id}", 200)]
    for l in mine:
        assert l["principal"] == "c-123" and l["level"] == "info"
        assert l["bytes"] > 0 and l["duration_ms"] >= 0
    refused = [l for l in access if l["status"] == 401]
    assert len(refused) == 1 and "principal" not in refused[0]
    assert oid not in "".join(l["route"] for l in access)


def test_text_log_format_is_one_readable_line_per_event(queue, procs):
    api = Api(queue, {"LOG_FORMAT": "text"}, name="order-api-text")
    procs.append(api)
    # the raw path (here with an encoded line break) never reaches the line:
    # the route template does
    requests.get(api.url + "/orders/x%0a2026-01-01T00:00:00.000Z%20error%20forged",
                 headers={"X-Correlation-Id": "text-1"}, timeout=10)
    assert api.stop() == 0
    lines = api.text().splitlines()
    assert lines and all(not l.startswith("{") for l in lines)
    assert not any(l.startswith("2026-01-01") for l in lines), lines
    line = next(l for l in lines if "correlation_id=text-1" in l)
    ts, level, service, rest = line.split(" ", 3)
    assert ts.endswith("Z") and level == "info" and service == "order-api:"
    assert rest.startswith("request ") and "status=400" in rest
    assert "route=/orders/{id} " in rest and "forged" not in rest


def test_metrics_endpoints(queue, procs):
    api = Api(queue)
    procs.append(api)
    port = free_port()
    w = Worker(queue, {"METRICS_PORT": str(port)})
    procs.append(w)
    oid = api.post().json()["id"]
    api.get("/orders/not-a-uuid")
    api.wait_status(oid, "PROCESSED")
    assert api.get("/metrics").status_code == 404  # never on the public port (issue 11)
    m = requests.get(api.metrics_url, timeout=5)
    assert m.status_code == 200 and m.headers["Content-Type"].startswith("text/plain")
    t = m.text
    assert 'order_api_requests_total{route="/orders",status="201"} 1' in t
    assert 'order_api_requests_total{route="/orders/{id}",status="400"} 1' in t
    assert 'order_api_requests_total{route="unknown",status="404"} 1' in t
    assert "order_api_request_duration_seconds_bucket{le=" in t
    assert "order_api_orders_created_total 1" in t
    assert "order_api_outbox_backlog" in t and "order_api_outbox_oldest_age_seconds" in t
    assert "order_api_sqs_errors_total" in t
    deadline = time.time() + 10
    while time.time() < deadline:
        wt = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        if "order_worker_orders_processed_total 1" in wt:
            break
        time.sleep(0.2)
    assert "order_worker_orders_processed_total 1" in wt
    for name in ("order_worker_messages_received_total", "order_worker_messages_failed_total",
                 "order_worker_messages_redelivered_total", "order_worker_messages_in_flight",
                 "order_worker_payment_duration_seconds_bucket",
                 "order_worker_end_to_end_seconds_bucket"):
        assert name in wt, name


def test_listing_pages_newest_first_and_stable_under_inserts(queue, procs):
    api = Api(queue)
    procs.append(api)
    mine = [api.post(headers={"X-Correlation-Id": "list"}).json()["id"] for _ in range(25)]
    stop = threading.Event()

    def insert():
        while not stop.is_set():
            api.post()
            time.sleep(0.01)

    t = threading.Thread(target=insert)
    t.start()
    seen, cursor, pages = [], None, 0
    try:
        while True:
            q = "/orders?limit=7" + (f"&cursor={cursor}" if cursor else "")
            r = api.get(q)
            assert r.status_code == 200, r.text
            body = r.json()
            assert len(body["orders"]) <= 7
            seen.extend(body["orders"])
            cursor = body["next_cursor"]
            pages += 1
            if set(mine) <= {o["id"] for o in seen} or not cursor:
                break
    finally:
        stop.set()
        t.join()
    ids = [o["id"] for o in seen]
    assert len(ids) == len(set(ids)), "a row repeated across pages"
    assert set(mine) <= set(ids), "a row was skipped"
    keys = [(o["created_at"], o["id"]) for o in seen]
    assert keys == sorted(keys, reverse=True)
    r = api.get("/orders?status=PENDING&limit=100").json()
    assert r["orders"] and all(o["status"] == "PENDING" for o in r["orders"])
    assert len(api.get("/orders").json()["orders"]) == 20


def test_listing_last_page_has_no_cursor_and_unknown_parameters_are_refused(queue, procs):
    """Issue 14: the last page used to carry a next_cursor leading to an empty
    page, and unknown query parameters were silently ignored."""
    api = Api(queue)
    procs.append(api)
    customer = "c-last-" + uuid.uuid4().hex[:8]
    body = dict(VALID_ORDER, customer_id=customer)
    for _ in range(4):
        assert api.post(body).status_code == 201
    page = api.get(f"/orders?customer_id={customer}&limit=2").json()
    assert len(page["orders"]) == 2 and page["next_cursor"]
    last = api.get(f"/orders?customer_id={customer}&limit=2&cursor={page['next_cursor']}").json()
    assert len(last["orders"]) == 2
    assert last["next_cursor"] is None, last
    exact = api.get(f"/orders?customer_id={customer}&limit=4").json()
    assert len(exact["orders"]) == 4 and exact["next_cursor"] is None
    r = api.get("/orders?limt=5")
    assert r.status_code == 400, r.text
    e = r.json()["error"]
    assert e["code"] == "invalid_parameter" and e["details"][0]["field"] == "limt"
    assert api.get("/orders/").status_code == 200  # the documented trailing slash


def test_listing_refuses_a_query_value_holding_a_nul(queue, procs):
    """A %00 cut the value where C reads it: a 200-byte customer_id passed as
    the 3 bytes before the NUL (found by schemathesis)."""
    api = Api(queue)
    procs.append(api)
    for query in ("customer_id=c-1%00" + "x" * 200, "status=PENDING%00x", "limit=5%00"):
        r = api.get("/orders?" + query)
        assert r.status_code == 400, (query, r.text)
        e = r.json()["error"]
        assert e["code"] == "invalid_parameter", r.text
        assert e["details"][0]["field"] == query.split("=")[0]


def run(args, env):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=20)


def test_help_version_and_bad_configuration():
    env = base_env("http://127.0.0.1:1/q")
    for prog in ("order-api", "order-worker"):
        r = run([str(BIN / prog), "--help"], env)
        assert r.returncode == 0 and "usage:" in r.stdout
        r = run([str(BIN / prog), "--version"], env)
        assert r.returncode == 0 and r.stdout.startswith(prog + " ")
        r = run([str(BIN / prog), "--bogus"], env)
        assert r.returncode == 2
    cases = [
        ("order-api", {"PORT": "abc"}, "PORT"),
        ("order-api", {"DATABASE_URL": ""}, "DATABASE_URL"),
        ("order-api", {"SQS_QUEUE_URL": ""}, "SQS_QUEUE_URL"),
        ("order-api", {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "AWS_REGION"),
        ("order-api", {"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ("order-worker", {"WORKER_MAX_IN_FLIGHT": "0"}, "WORKER_MAX_IN_FLIGHT"),
        ("order-worker", {"PAYMENT_DELAY_MS": "-1"}, "PAYMENT_DELAY_MS"),
        ("order-worker", {"AWS_ENDPOINT_URL_SQS": "ftp://x"}, "AWS_ENDPOINT_URL_SQS"),
    ]
    for prog, over, name in cases:
        e = dict(env)
        e.update(over)
        r = run([str(BIN / prog)], e)
        assert r.returncode == 2, (prog, over, r.stdout, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and name in lines[0], (prog, over, r.stderr)


def test_installed_layout_finds_its_migrations(tmp_path):
    """cmake --install puts the programs in bin/ and the migrations where
    `order-api migrate` finds them without MIGRATIONS_DIR."""
    r = subprocess.run(["cmake", "--install", str(BIN), "--prefix", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "bin" / "order-worker").exists()
    assert (tmp_path / "share" / "order-service" / "migrations" / "001_orders.sql").exists()
    env = base_env("unused")
    env.pop("MIGRATIONS_DIR")
    r = run([str(tmp_path / "bin" / "order-api"), "migrate"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "database schema is up to date" in r.stdout
