"""Fixtures for the integration tests: real PostgreSQL, real SQS-compatible
server (LocalStack), and the real order-api / order-worker binaries.

The test command (scripts/test.sh) starts PostgreSQL and LocalStack and
exports their settings (.local/env); each test starts and stops its own API
and worker processes, on free ports, against a queue of its own, so tests
never see each other's messages.
"""
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import psycopg
import pytest
import requests

import tokens

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("ORDER_BIN", ROOT / "build"))
LOG_DIR = Path(os.environ.get("ORDER_TEST_LOGS", ROOT / ".local" / "test-logs"))


def _load_env():
    env_file = ROOT / ".local" / "env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            line = line.strip()
            if line.startswith("export "):
                line = line[len("export "):]
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                os.environ.setdefault(k, v.strip("'\""))


_load_env()

VALID_ORDER = {
    "customer_id": "c-123",
    "currency": "BRL",
    "items": [{"product_id": "p-1", "quantity": 2, "unit_price_cents": 1500}],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Order events are off unless a test asks for them (events_env): .local/env
# names the local bus, and every API publishing to it would mix its events
# into the next test's.
EVENT_VARS = ("EVENT_BUS_NAME", "EVENT_SOURCE", "AWS_ENDPOINT_URL_EVENTS")


def events_env(bus, endpoint=None):
    """The variables that turn order events on, to the bus named (.local/env's endpoint)."""
    return {
        "EVENT_BUS_NAME": bus,
        "AWS_ENDPOINT_URL_EVENTS": endpoint or os.environ["AWS_ENDPOINT_URL_EVENTS"],
    }


def base_env(queue_url):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_CONTAINER", "ORDER_", "PYTEST")) and k not in EVENT_VARS
    }
    env.update(
        {
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "AWS_ENDPOINT_URL_SQS": os.environ["AWS_ENDPOINT_URL_SQS"],
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            "SQS_QUEUE_URL": queue_url,
            "BIND_ADDRESS": "127.0.0.1",
            "MIGRATIONS_DIR": str(ROOT / "migrations"),
            "OPENAPI_PATH": str(ROOT / "api" / "openapi.yaml"),
            "LOG_LEVEL": "info",
            # auth is on in every test: the session's keys (tokens.py)
            "AUTH_ISSUER": tokens.ISSUER,
            "AUTH_AUDIENCE": tokens.AUDIENCE,
            "AUTH_JWKS_FILE": str(tokens.KEYS.jwks_path),
            "RATE_LIMIT_RPS": "0",
            # sanitizers: fail the process (and so the test) on any report
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=67",
        }
    )
    return env


class Proc:
    """A program under test, its stdout captured to a file of JSON lines."""

    def __init__(self, name, args, env):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOG_DIR / f"{name}-{uuid.uuid4().hex[:8]}.log"
        self._log = open(self.log_path, "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.alive():
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self._log.close()
        return rc

    def kill9(self):
        self.p.kill()
        self.p.wait()
        self._log.close()

    def text(self):
        return self.log_path.read_text(errors="replace")

    def lines(self):
        out = []
        for raw in self.text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append({"unparsed": raw})
        return out


class Api(Proc):
    def __init__(self, queue_url, extra_env=None, name="order-api", ready="/readyz"):
        self.port = free_port()
        env = base_env(queue_url)
        env["PORT"] = str(self.port)
        env["METRICS_PORT"] = str(free_port())  # /metrics has its own listener
        env.update(extra_env or {})
        self.metrics_url = f"http://127.0.0.1:{env['METRICS_PORT']}/metrics"
        super().__init__(name, [str(BIN / "order-api")], env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 15
        while time.time() < deadline:
            if not self.alive():
                raise RuntimeError(f"order-api exited: {self.text()}")
            try:
                # ready: the database answers and the token keys are loaded
                if requests.get(self.url + ready, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("order-api did not come up")

    def post(self, body=VALID_ORDER, headers=None, **kw):
        h = {"Content-Type": "application/json"}
        h.update(tokens.admin_headers())
        h.update(headers or {})
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.url + "/orders", data=data, headers=h, timeout=10, **kw)

    def get(self, path, headers=None, **kw):
        h = tokens.admin_headers()
        h.update(headers or {})
        return requests.get(self.url + path, headers=h, timeout=10, **kw)

    def wait_status(self, order_id, status, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            r = self.get(f"/orders/{order_id}")
            if r.status_code == 200:
                last = r.json()
                if last["status"] == status:
                    return last
            time.sleep(0.1)
        raise AssertionError(f"order {order_id} not {status} after {timeout}s: {last}")


class Worker(Proc):
    def __init__(self, queue_url, extra_env=None, name="order-worker"):
        env = base_env(queue_url)
        env.update(
            {"METRICS_PORT": "0", "PAYMENT_DELAY_MS": "300", "WORKER_WAIT_TIME_S": "1"}
        )
        env.update(extra_env or {})
        self.metrics_port = int(env["METRICS_PORT"])
        super().__init__(name, [str(BIN / "order-worker")], env)


@pytest.fixture(scope="session", autouse=True)
def migrated():
    env = base_env("unused")
    r = subprocess.run([str(BIN / "order-api"), "migrate"], env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="session")
def sqs():
    return boto3.client(
        "sqs",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def make_queue(sqs, max_receive=3, visibility=30, name=None):
    name = name or "t-" + uuid.uuid4().hex[:12]
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    q = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
            ),
        },
    )["QueueUrl"]
    return q, dlq


def _queue_pair(sqs, max_receive):
    q, dlq = make_queue(sqs, max_receive=max_receive)
    yield q, dlq
    for u in (q, dlq):
        try:
            sqs.delete_queue(QueueUrl=u)
        except Exception:
            pass


def dlq_ids(sqs, dlq, want, timeout=60):
    """The message ids that reached dlq, polled until want (a set) have all
    arrived or timeout seconds have passed."""
    got = set()
    deadline = time.time() + timeout
    while not want <= got and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            got.add(m["MessageId"])
    return got


@pytest.fixture
def queue(sqs):
    """A fresh queue (its dead-letter queue after 3 receives)."""
    for q, _ in _queue_pair(sqs, 3):
        yield q


@pytest.fixture
def queues(sqs):
    """(queue, dead-letter queue) with maxReceiveCount 2."""
    yield from _queue_pair(sqs, 2)


@pytest.fixture
def db():
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
        yield c


@pytest.fixture
def procs():
    """Processes started by a test; stopped afterwards, sanitizer-clean or the test fails."""
    started = []
    yield started
    bad = []
    for p in started:
        if p.p.poll() is None:
            rc = p.stop()
            if rc not in (0,):
                bad.append((p.name, rc, p.log_path))
        elif p.p.returncode in (66, 67):
            bad.append((p.name, p.p.returncode, p.log_path))
    assert not bad, f"processes exited badly: {bad}"


def services(cmd):
    subprocess.run([str(ROOT / "scripts" / "services.sh"), cmd], check=True, timeout=180)
