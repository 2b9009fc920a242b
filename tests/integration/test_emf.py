"""Metrics in CloudWatch (METRICS_EMF) and the bounded outbox backlog
(OUTBOX_MAX_BACKLOG), against the real programs.

The EMF lines both programs print are checked against the Embedded Metric
Format specification (the _aws object, CloudWatchMetrics, units from
CloudWatch's list, a top-level value for every metric, the 100-metric and
100-value limits), their counters against what the test did, and every
metric deploy/monitoring.tf and deploy/alarms.tf name in the programs'
namespace against what the programs emit.
"""
import json
import re
import time
import uuid

import requests

import tokens
from conftest import ROOT, Api, Worker, dlq_ids, free_port

EMF = {"METRICS_EMF": "1", "METRICS_EMF_INTERVAL_S": "1"}
NAMESPACE = "OrderService"

# CloudWatch's StandardUnit values (the Unit of a MetricDatum).
CLOUDWATCH_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}



def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_emf(doc):
    """Asserts doc is a valid EMF document; returns {name: (unit, value)}."""
    assert isinstance(doc, dict)
    aws = doc["_aws"]
    assert set(aws) <= {"Timestamp", "CloudWatchMetrics"}, aws.keys()
    ts = aws["Timestamp"]
    assert isinstance(ts, int) and abs(ts - time.time() * 1000) < 600_000, ts
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    out = {}
    for d in directives:
        assert set(d) == {"Namespace", "Dimensions", "Metrics"}, d.keys()
        assert d["Namespace"] == NAMESPACE
        assert isinstance(d["Dimensions"], list) and d["Dimensions"]
        for dimset in d["Dimensions"]:
            assert isinstance(dimset, list) and 1 <= len(dimset) <= 30
            for dim in dimset:
                assert isinstance(doc.get(dim), str) and doc[dim], dim
        assert d["Dimensions"] == [["Service"]]
        metrics = d["Metrics"]
        assert 1 <= len(metrics) <= 100
        for m in metrics:
            assert set(m) <= {"Name", "Unit", "StorageResolution"}, m
            name, unit = m["Name"], m["Unit"]
            assert isinstance(name, str) and 1 <= len(name) <= 255
            assert unit in CLOUDWATCH_UNITS, unit
            assert name not in out, f"{name} twice in one document"
            v = doc[name]  # every metric has its value at the top level
            if isinstance(v, dict):
                assert set(v) == {"Values", "Counts"}, v.keys()
                assert 1 <= len(v["Values"]) <= 100
                assert len(v["Counts"]) == len(v["Values"])
                assert all(is_number(x) for x in v["Values"] + v["Counts"])
                assert all(c > 0 for c in v["Counts"])
            elif isinstance(v, list):
                assert 1 <= len(v) <= 100 and all(is_number(x) for x in v)
            else:
                assert is_number(v), (name, v)
            out[name] = (unit, v)
    return out


def emf_lines(proc):
    """The EMF documents of a program's stdout; every line must be JSON
    (a line written half over another would not parse)."""
    docs = []
    for raw in proc.text().splitlines():
        if not raw.startswith("{"):
            continue  # sanitizer reports, if any, fail the run elsewhere
        line = json.loads(raw)
        if "_aws" in line:
            docs.append(line)
        else:
            assert "msg" in line, raw
    return docs


def total(docs, name):
    s = 0
    for d in docs:
        v = d.get(name)
        if isinstance(v, dict):
            s += sum(v["Counts"])
        elif v is not None:
            s += v
    return s


def tf_metrics():
    """(name, service) of every metric monitoring.tf and alarms.tf name in
    the programs' namespace."""
    found = set()
    dash = (ROOT / "deploy" / "monitoring.tf").read_text()
    refs = re.findall(r'concat\(\[local\.ns, "(\w+)"\], local\.(api|worker)', dash)
    assert len(refs) == dash.count("[local.ns,"), "a dashboard metric the test cannot read"
    found |= {(n, "order-" + s) for n, s in refs}
    alarms = (ROOT / "deploy" / "alarms.tf").read_text()
    refs = re.findall(
        r'namespace\s*=\s*var\.metrics_namespace\s*\n\s*metric_name\s*=\s*"(\w+)"\s*\n'
        r'\s*dimensions\s*=\s*\{\s*Service\s*=\s*"(order-api|order-worker)"\s*\}',
        alarms,
    )
    assert len(refs) == len(re.findall(r"namespace\s*=\s*var\.metrics_namespace", alarms))
    found |= set(refs)
    assert len(found) >= 20, found  # the parse found the dashboard and the alarms
    return found


def test_emf_lines_follow_the_spec_and_cover_the_dashboard(queue, procs):
    started = time.time()
    api = Api(queue, dict(EMF, OUTBOX_RELAY_INTERVAL_MS="200"))
    procs.append(api)
    # an order canceled before any worker runs, one refused as invalid
    r = api.post()
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    r = requests.post(f"{api.url}/orders/{oid}/cancel", headers=tokens.admin_headers(), timeout=10)
    assert r.status_code == 200, r.text
    assert api.post({"customer_id": "c-1"}).status_code == 422
    r = requests.post(api.url + "/orders", json={}, timeout=10)  # no token
    assert r.status_code == 401
    w = Worker(queue, EMF)
    procs.append(w)
    ids = []
    for _ in range(2):
        r = api.post()
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for i in ids:
        api.wait_status(i, "PROCESSED")
    # the last line (at the stop) holds what happened since the previous one
    assert w.stop() == 0
    assert api.stop() == 0
    elapsed = time.time() - started

    emitted = set()
    for proc, service in ((api, "order-api"), (w, "order-worker")):
        docs = emf_lines(proc)
        assert docs, f"{service} wrote no EMF line"
        # one aggregated line per interval, never one per request
        assert len(docs) <= elapsed + 2, len(docs)
        for d in docs:
            assert d["Service"] == service
            for name, (unit, _) in check_emf(d).items():
                emitted.add((name, service))
                if name.endswith("Latency"):
                    assert unit == "Milliseconds"
                elif name == "OutboxOldestAge":
                    assert unit == "Seconds"
                else:
                    assert unit == "Count", name
        if service == "order-api":
            assert total(docs, "OrdersAccepted") == 3
            assert total(docs, "OrdersCanceled") == 1
            assert total(docs, "OrdersRejectedInvalid") == 1
            assert total(docs, "OrdersRejectedAuth") == 1
            assert total(docs, "AuthFailures") == 1
            assert total(docs, "OrdersRejected") == 2
            assert total(docs, "Http5xx") == 0
            assert total(docs, "Overloaded") == 0
            assert total(docs, "HttpRequests") >= 6
            assert total(docs, "HttpLatency") >= 6  # the Counts
            assert total(docs, "OrdersPublished") >= 3
            assert docs[-1]["OutboxBacklog"] == 0
        else:
            assert total(docs, "OrdersProcessed") == 2
            assert total(docs, "PaymentLatency") == 2
            # PAYMENT_DELAY_MS is 300: each value within a bucket's 8.3% of at least that
            for d in docs:
                if "PaymentLatency" in d:
                    assert min(d["PaymentLatency"]["Values"]) >= 300 * 0.9
            assert total(docs, "DlqBound") == 0
            assert all("InFlight" in d for d in docs)

    wanted = tf_metrics()
    missing = wanted - emitted
    assert not missing, f"named in deploy/ but not emitted: {sorted(missing)}"


def test_probe_503s_are_not_counted_as_server_errors(queue, tmp_path, procs):
    # a key set with no usable key: /readyz answers 503 for as long as the API runs
    keys = tmp_path / "jwks.json"
    keys.write_text('{"keys": []}')
    api = Api(queue, dict(EMF, AUTH_JWKS_FILE=str(keys)), ready="/healthz")
    procs.append(api)
    for _ in range(3):
        assert requests.get(api.url + "/readyz", timeout=5).status_code == 503
    assert requests.get(api.url + "/orders", headers=tokens.admin_headers(),
                        timeout=5).status_code == 503  # a real request refused: counted
    assert api.stop() == 0
    docs = emf_lines(api)
    assert total(docs, "Http5xx") == 1
    assert total(docs, "HttpRequests") == 1


def test_outbox_backlog_limit_answers_503_overloaded(procs):
    # SQS unreachable: a closed port, so every accepted order stays in the outbox
    dead = f"http://127.0.0.1:{free_port()}"
    api = Api(
        f"{dead}/000000000000/backlog-test-{free_port()}",
        dict(
            EMF,
            OUTBOX_MAX_BACKLOG="3",
            AWS_ENDPOINT_URL_SQS=dead,
            SQS_MAX_ATTEMPTS="1",
            SQS_CONNECT_TIMEOUT_MS="200",
            OUTBOX_RELAY_INTERVAL_MS="200",
        ),
    )
    procs.append(api)
    started = time.time()
    for _ in range(3):  # below the limit an SQS outage still gets 201
        r = api.post()
        assert r.status_code == 201, r.text
    refused = 0
    for _ in range(10):
        r = api.post()
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "overloaded"
        assert int(r.headers["Retry-After"]) >= 1
        refused += 1
    # the process is healthy: a load balancer must keep it
    assert requests.get(api.url + "/readyz", timeout=5).status_code == 200
    assert requests.get(api.url + "/healthz", timeout=5).status_code == 200
    prom = requests.get(api.metrics_url, timeout=5).text  # Prometheus sees the same
    assert f"order_api_overloaded_total {refused}" in prom
    assert "order_api_outbox_backlog 3" in prom
    time.sleep(1.5)  # let an interval pass with the backlog standing
    assert api.stop() == 0
    elapsed = time.time() - started

    lines = api.lines()
    warned = [x for x in lines if str(x.get("msg", "")).startswith("overloaded")]
    assert warned, "no overloaded log line"
    assert len(warned) <= elapsed + 1  # at most once a second
    assert sum(x["refused"] for x in warned) <= refused
    assert all(x["limit"] == 3 and x["backlog"] >= 3 for x in warned)

    docs = emf_lines(api)
    for d in docs:
        check_emf(d)
    assert total(docs, "Overloaded") == refused
    assert total(docs, "OrdersAccepted") == 3
    assert total(docs, "OrdersRejected") == refused
    assert total(docs, "OrdersRejectedUnavailable") == 0
    assert max(d["OutboxBacklog"] for d in docs) == 3
    assert total(docs, "PublishErrors") >= 1
    assert max(d["OutboxOldestAge"] for d in docs) > 0


def test_worker_counts_dlq_bound_messages_once_and_receive_errors(queues, sqs, procs):
    queue, dlq = queues  # maxReceiveCount 2
    bodies = [
        "this is not json",
        json.dumps({"type": "order.created", "version": 1, "order_id": str(uuid.uuid4())}),
    ]
    ids = [sqs.send_message(QueueUrl=queue, MessageBody=b)["MessageId"] for b in bodies]
    w = Worker(queue, dict(EMF, WORKER_POISON_DELAY_S="0", WORKER_MAX_RECEIVE_COUNT="2"))
    procs.append(w)
    assert dlq_ids(sqs, dlq, set(ids)) == set(ids)
    assert w.stop() == 0
    docs = emf_lines(w)
    for d in docs:
        check_emf(d)
    # each poison message was received twice, and counted on its last receive only
    assert total(docs, "MessagesReceived") == 4
    assert total(docs, "DlqBound") == 2
    assert total(docs, "OrdersProcessed") == 0
    assert total(docs, "ReceiveErrors") == 0

    # SQS unreachable: the failed long polls are counted
    dead = f"http://127.0.0.1:{free_port()}"
    w2 = Worker(f"{dead}/000000000000/gone", dict(EMF, AWS_ENDPOINT_URL_SQS=dead))
    procs.append(w2)
    deadline = time.time() + 30
    while time.time() < deadline and not re.search(r'"ReceiveErrors":[1-9]', w2.text()):
        time.sleep(0.2)
    assert w2.stop() == 0
    docs = emf_lines(w2)
    assert total(docs, "ReceiveErrors") >= 1
    assert total(docs, "MessagesReceived") == 0
