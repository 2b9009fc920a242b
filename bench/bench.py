#!/usr/bin/env python3
"""bench/bench.py - the measurements of bench/run.sh against ONE SQS server.

Started by bench/run.sh (which builds, starts the services and writes
RESULTS.md); writes a JSON file with every figure. Everything it starts
(order-api, order-worker, wrk, perf) is stopped before it returns, also on
errors and on SIGINT/SIGTERM. It works in a PostgreSQL database of its own
(created here, dropped at the end) and on SQS queues of its own (created here,
deleted at the end), so other users of the same PostgreSQL and SQS server are
not disturbed and cannot disturb the counts.

Phases:
  load   order-api alone under wrk -t2 at each concurrency level for --duration s
         (a fresh API and queue per level; LOG_LEVEL=warn)
  prof   optional: perf record of the API during a short extra wrk run
  e2e    for each worker count W: POST --orders orders with no worker running,
         wait until the outbox has sent them all, start W workers, time until
         every order is PROCESSED; count SQS requests; peak RSS
  frugal one worker with WORKER_MAX_IN_FLIGHT=1000 over --frugal-orders orders
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import psycopg
from botocore.config import Config as BotoConfig

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"bench [{time.strftime('%H:%M:%S')}]: {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise Interrupted(f"signal {signum}")


def run_closing(run, body):
    """body()'s exit status, 130 when a signal interrupted it; run is closed
    (what it started stopped) either way."""
    try:
        return body()
    except Interrupted as e:
        log(f"interrupted ({e})")
        return 130
    finally:
        run.close()


# ----------------------------------------------------------------- CPU sampling
class CpuSampler(threading.Thread):
    """Samples /proc/*/stat twice a second and adds up CPU time per group of
    processes (like pidstat, for processes that come and go). A process that
    existed before the sampler started counts from its first sample only."""

    def __init__(self, classify, interval=0.5):
        super().__init__(daemon=True)
        self.classify = classify  # (pid, ppid, comm, cmdline) -> group name
        self.interval = interval
        self.lock = threading.Lock()
        self.last = {}  # (pid, starttime) -> ticks
        self.group_of = {}  # (pid, starttime) -> group
        self.acc = {}  # group -> ticks
        self.machine = self._machine()
        self.machine_acc = [0, 0]  # busy, total
        self.boot_ticks = self._uptime_ticks()
        self.stop_ev = threading.Event()
        self.sample()

    @staticmethod
    def _uptime_ticks():
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) * CLK_TCK

    @staticmethod
    def _machine():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        total = sum(v[:8])
        return total - idle, total

    def _read(self):
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    s = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            r = s.rfind(")")
            comm = s[s.find("(") + 1 : r]
            fields = s[r + 2 :].split()
            ppid = int(fields[1])
            ticks = int(fields[11]) + int(fields[12])
            start = int(fields[19])
            out[(int(d), start)] = (ppid, comm, ticks)
        return out

    def sample(self):
        procs = self._read()
        with self.lock:
            for key, (ppid, comm, ticks) in procs.items():
                g = self.group_of.get(key)
                if g is None:
                    try:
                        with open(f"/proc/{key[0]}/cmdline", "rb") as f:
                            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
                    except OSError:
                        cmd = ""
                    g = self.classify(key[0], ppid, comm, cmd)
                    if g is None:  # forked, not exec'd yet: ask again next time
                        g = "bench harness"
                    else:
                        self.group_of[key] = g
                prev = self.last.get(key)
                if prev is None:
                    # started after the sampler: all its CPU time is in our window
                    prev = 0 if key[1] >= self.boot_ticks - CLK_TCK else ticks
                d = max(0, ticks - prev)
                self.acc[g] = self.acc.get(g, 0) + d
                if g.startswith("other") and d:
                    k = "~" + comm
                    self.acc[k] = self.acc.get(k, 0) + d
                self.last[key] = ticks
            for key in list(self.last):
                if key not in procs:
                    del self.last[key]
            m = self._machine()
            self.machine_acc[0] += m[0] - self.machine[0]
            self.machine_acc[1] += m[1] - self.machine[1]
            self.machine = m

    def run(self):
        while not self.stop_ev.wait(self.interval):
            try:
                self.sample()
            except Exception as e:  # never kill the benchmark over a sample
                log(f"cpu sampler: {e}")

    def snapshot(self):
        self.sample()
        with self.lock:
            return (time.monotonic(), dict(self.acc), list(self.machine_acc))

    @staticmethod
    def between(a, b):
        """CPU use per group between two snapshots, in % of one core."""
        dt = b[0] - a[0]
        if dt <= 0:
            return {}
        out, others = {}, []
        for g, t in b[1].items():
            d = t - a[1].get(g, 0)
            if d <= 0:
                continue
            v = round(100.0 * d / CLK_TCK / dt, 1)
            if g.startswith("~"):
                others.append((g[1:], v))
            else:
                out[g] = v
        out["_other_top"] = sorted(others, key=lambda x: -x[1])[:4]
        busy = b[2][0] - a[2][0]
        total = b[2][1] - a[2][1]
        ncpu = os.cpu_count() or 1
        out["machine (all processes)"] = round(100.0 * ncpu * busy / total, 1) if total else 0.0
        ours = sum(v for k, v in out.items()
                   if k != "machine (all processes)" and not k.startswith(("other", "_")))
        out["_wall_s"] = round(dt, 2)
        out["_ours"] = round(ours, 1)
        return out


# ----------------------------------------------------------------- processes
class Proc:
    registry = []

    def __init__(self, name, args, env, log_path, group):
        self.name = name
        self.group = group
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        Proc.registry.append(self)

    def alive(self):
        return self.p.poll() is None

    def vmhwm_kb(self):
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def send(self, sig):
        if self.alive():
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} (pid {self.pid}) did not exit within {timeout}s; killing it")
            self.p.kill()
            return self.p.wait(timeout=10)

    def stop(self, timeout=30, sig=signal.SIGTERM):
        t0 = time.monotonic()
        self.send(sig)
        rc = self.wait(timeout)
        self.log.close()
        if self in Proc.registry:
            Proc.registry.remove(self)
        return rc, round(time.monotonic() - t0, 2)

    def problems(self):
        """Log lines at warn/error level (the programs log JSON lines)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [l for l in lines if '"level":"warn"' in l or '"level":"error"' in l
                or not l.startswith("{")]

    @classmethod
    def stop_all(cls):
        for p in list(cls.registry):
            p.send(signal.SIGTERM)
        for p in list(cls.registry):
            try:
                p.stop(timeout=30)
            except Exception as e:
                log(f"stopping {p.name}: {e}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def metrics(port):
    """Prometheus text -> {name: value, 'name{labels}': value}; name sums all series."""
    _, text = http_get(f"http://127.0.0.1:{port}/metrics")
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        try:
            key, val = line.rsplit(" ", 1)
            v = float(val)
        except ValueError:
            continue
        out[key] = v
        name = key.split("{", 1)[0]
        if "_bucket" not in name:
            out[name] = out.get(name, 0.0) + v if "{" in key else v
    return out


def wait_until(pred, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def parse_wrk(text):
    m = RESULT_RE.search(text)
    if not m:
        raise RuntimeError(f"wrk printed no RESULT line:\n{text[-2000:]}")
    out = {}
    for kv in m.group(1).split():
        k, v = kv.split("=", 1)
        out[k] = float(v) if "." in v else int(v)
    return out


# ----------------------------------------------------------------- the bench
class Bench:
    def __init__(self, a):
        self.a = a
        self.run_id = a.run_id
        self.server = a.sqs_name
        self.out_dir = Path(a.out_dir)
        self.log_dir = self.out_dir / f"logs-{self.server}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.bin = Path(a.bin_dir)
        self.dbname = f"bench_{self.run_id}_{self.server}".replace("-", "_")
        base = a.database_url.rsplit("/", 1)[0]
        self.db_url = f"{base}/{self.dbname}"
        self.maint_url = f"{base}/postgres"
        self.sqs = boto3.client(
            "sqs", endpoint_url=a.endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=BotoConfig(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=30))
        self.queues = []
        self.pending = []
        self.db = None
        self.res = {"server": self.server, "endpoint": a.endpoint, "orders": a.orders,
                    "run_id": self.run_id, "load": [], "e2e": [], "problems": []}
        self.pg_pid = self._postmaster_pid()
        self.sqs_pids = set(int(x) for x in a.sqs_pid.split(",") if x) if a.sqs_pid else set()
        self.sampler = CpuSampler(self.classify)

    def close(self):
        """Stops every process of the run, deletes its queues and its database."""
        Proc.stop_all()
        for q in list(self.queues):
            self.delete_queue(q)
        self.sampler.stop_ev.set()
        self.drop_db()

    # -- cpu grouping
    def _postmaster_pid(self):
        try:
            return int((ROOT / ".local/pg/postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    CHILD_GROUPS = {"order-api": "order-api", "order-worker": "order-worker", "wrk": "wrk",
                    "perf": "perf (profiling only)"}

    def classify(self, pid, ppid, comm, cmd):
        """Group of a process; None while it is not known yet (not cached)."""
        if pid == os.getpid():
            return "bench harness"
        if ppid == os.getpid():  # started by us: named by what it runs
            g = self.CHILD_GROUPS.get(comm)
            if g:
                return g
            return None if comm.startswith("python") else "bench harness"
        if self.pg_pid and (pid == self.pg_pid or ppid == self.pg_pid):
            if f" {self.dbname} " in cmd + " ":
                return "postgresql (bench database)"
            if re.match(r"postgres: \S+ \S+ (127\.0\.0\.1|\[local\]|::1)", cmd):
                return "other: postgresql backends of other databases"
            return "postgresql (shared background)"
        if pid in self.sqs_pids or ppid in self.sqs_pids:
            return f"sqs server ({self.server})"
        return "other processes"

    @staticmethod
    def own(proc):
        return proc

    # -- environment
    def env(self, queue_url, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "SQS_", "PG", "DATABASE", "WORKER_", "API_"))}
        env.update({
            "DATABASE_URL": self.db_url,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_SQS": self.a.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "SQS_QUEUE_URL": queue_url,
            "BIND_ADDRESS": "127.0.0.1",
            "MIGRATIONS_DIR": str(ROOT / "migrations"),
            "OPENAPI_PATH": str(ROOT / "api" / "openapi.yaml"),
            "LOG_LEVEL": "warn",
            # the system's figures are auth-off runs; bench/auth_bench.py measures auth on
            # against off. With auth off every caller shares one rate-limit bucket: off too.
            "AUTH_MODE": "off",
            "RATE_LIMIT_RPS": "0",
            # the load levels measure how fast orders are accepted, and a long run
            # against LocalStack backs the outbox up past the default bound: the
            # 503 overloaded answers would be the bound, not the API, at work
            "OUTBOX_MAX_BACKLOG": "0",
        })
        env.update(extra or {})
        return env

    # -- database
    def create_db(self):
        with psycopg.connect(self.maint_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.dbname}"')
            c.execute(f'CREATE DATABASE "{self.dbname}"')
        r = subprocess.run([str(self.bin / "order-api"), "migrate"], env=self.env("unused"),
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"migrate failed: {r.stdout!r} {r.stderr!r}")
        self.db = psycopg.connect(self.db_url, autocommit=True)
        log(f"database {self.dbname} created and migrated")

    def drop_db(self):
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.a.keep_db:
            log(f"keeping database {self.dbname}")
            return
        try:
            with psycopg.connect(self.maint_url, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except Exception as e:
            log(f"could not drop database {self.dbname}: {e}")

    def abandon_unsent(self, queue_url):
        """Marks the rows a stopped API left unsent for its (now deleted) queue
        as sent, so that they cost the relays of later phases nothing."""
        has_col = self.q1("SELECT count(*) FROM information_schema.columns"
                          " WHERE table_name = 'outbox' AND column_name = 'queue_url'")[0]
        sql = ("UPDATE outbox SET sent_at = now(), last_error = 'bench: queue deleted'"
               " WHERE sent_at IS NULL" + (" AND queue_url = %s" if has_col else ""))
        cur = self.db.execute(sql, (queue_url,) if has_col else ())
        return cur.rowcount

    def q1(self, sql, *params):
        return self.db.execute(sql, params).fetchone()

    # -- queues
    def new_queue(self, label):
        name = f"bench-{self.run_id}-{self.server[:2]}-{label}"[:80]
        url = self.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        self.queues.append(url)
        return url

    def delete_queue(self, url):
        try:
            self.sqs.delete_queue(QueueUrl=url)
        except Exception as e:
            log(f"delete_queue {url}: {e}")
        if url in self.queues:
            self.queues.remove(url)

    def queue_depth(self, url):
        try:
            a = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                              "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            return int(a.get("ApproximateNumberOfMessages", -1)), int(
                a.get("ApproximateNumberOfMessagesNotVisible", -1))
        except Exception as e:
            log(f"get_queue_attributes: {e}")
            return None, None

    # -- programs
    def start_api(self, queue_url, label):
        port, mport = free_port(), free_port()
        p = self.own(Proc(f"order-api-{label}", [str(self.bin / "order-api")],
                          self.env(queue_url, {"PORT": str(port), "METRICS_PORT": str(mport)}),
                          self.log_dir / f"api-{label}.log", "order-api"))
        p.port = port
        p.metrics_port = mport  # /metrics is not on the public port

        def up():
            if not p.alive():
                raise RuntimeError(f"order-api exited: {p.log_path.read_text()[-2000:]}")
            try:
                return http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200
            except OSError:
                return False
        wait_until(up, 20, "order-api /healthz")
        return p

    def start_worker(self, queue_url, label, max_in_flight):
        port = free_port()
        p = self.own(Proc(f"order-worker-{label}", [str(self.bin / "order-worker")],
                          self.env(queue_url, {
                              "METRICS_PORT": str(port),
                              "PAYMENT_DELAY_MS": str(self.a.payment_delay_ms),
                              "WORKER_MAX_IN_FLIGHT": str(max_in_flight),
                          }),
                          self.log_dir / f"worker-{label}.log", "order-worker"))
        p.port = port
        return p

    def wrk(self, url, conns, duration, label, extra_env=None, latency=True):
        env = dict(os.environ)
        env.update(extra_env or {})
        args = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
                "-s", str(ROOT / "bench" / "post.lua")]
        if latency:
            args.append("--latency")
        args.append(url + "/orders")
        p = self.own(Proc(f"wrk-{label}", args, env, self.log_dir / f"wrk-{label}.log", "wrk"))
        return p

    def stop(self, procs, timeout=40):
        for p in procs:
            p.send(signal.SIGTERM)
        out = {}
        for p in procs:
            rc, secs = p.stop(timeout=timeout)
            out[p.name] = {"rc": rc, "stop_s": secs}
            probs = p.problems()
            if rc not in (0, None) or probs:
                by_msg = {}
                for line in probs:
                    try:
                        msg = json.loads(line).get("msg", line)
                    except ValueError:
                        msg = line
                    msg = re.sub(r"\d+", "N", msg)[:200]
                    by_msg[msg] = by_msg.get(msg, 0) + 1
                self.res["problems"].append({"process": p.name, "rc": rc,
                                             "log_lines": len(probs), "messages": by_msg})
        return out

    # ------------------------------------------------------------- phase: sqs
    def sqs_ceiling(self):
        """SendMessageBatch straight to the SQS server with wrk (no API, no
        PostgreSQL). Repeated until the rate stops growing (a JVM needs a while
        to compile its hot code); the last round is the figure."""
        q = self.new_queue("ceiling")
        rounds = []
        try:
            for i in range(self.a.ceiling_rounds_max):
                args = ["wrk", "-t2", "-c16", f"-d{self.a.ceiling_s}s", "--timeout", "10s",
                        "-s", str(ROOT / "bench" / "sqs_send.lua"), self.a.endpoint.rstrip("/") + "/"]
                s0 = self.sampler.snapshot()
                w = Proc(f"wrk-sqs-{i + 1}", args, dict(os.environ, QUEUE_URL=q),
                         self.log_dir / f"wrk-sqs-{i + 1}.log", "wrk")
                w.wait(self.a.ceiling_s + 30)
                s1 = self.sampler.snapshot()
                w.stop(5)
                r = parse_wrk(w.log_path.read_text())
                r["messages_per_s"] = round(10 * r["ok"] / r["duration_s"], 1)
                r["cpu"] = CpuSampler.between(s0, s1)
                rounds.append(r)
                log(f"SQS server alone, round {i + 1}: {r['rps']:.0f} SendMessageBatch/s "
                    f"({r['messages_per_s']:.0f} messages/s), p99 {r['p99_ms']:.1f} ms, non-200 {r['non200']}")
                if i >= 1 and r["messages_per_s"] < 1.1 * rounds[-2]["messages_per_s"]:
                    break
        finally:
            self.delete_queue(q)
        return {"rounds": rounds, "final": rounds[-1] if rounds else None}

    # ------------------------------------------------------------- phase: load
    def warmup(self):
        q = self.new_queue("warm")
        api = self.start_api(q, "warmup")
        try:
            w = self.wrk(f"http://127.0.0.1:{api.port}", 64, self.a.warmup_s, "warmup",
                         {"CUSTOMER_ID": f"warm-{self.run_id}"})
            w.wait(self.a.warmup_s + 30)
            w.stop(5)
        finally:
            self.stop([api])
            self.delete_queue(q)

    def load_level(self, conns):
        label = f"load-c{conns}"
        q = self.new_queue(f"c{conns}")
        api = self.start_api(q, label)
        try:
            m0 = metrics(api.metrics_port)
            s0 = self.sampler.snapshot()
            w = self.wrk(f"http://127.0.0.1:{api.port}", conns, self.a.duration, label,
                         {"CUSTOMER_ID": f"load-{self.run_id}-c{conns}"})
            w.wait(self.a.duration + 30)
            s1 = self.sampler.snapshot()
            w.stop(5)
            m1 = metrics(api.metrics_port)
            r = parse_wrk(w.log_path.read_text())
            hwm = api.vmhwm_kb()
        finally:
            stops = self.stop([api])
            self.delete_queue(q)
        left = self.abandon_unsent(q)
        dur = r["duration_s"]
        row = {
            "connections": conns,
            "duration_s": dur,
            "requests": r["requests"],
            "rps": r["rps"],
            "accepted_per_s": round(r["created"] / dur, 1),
            "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "p999_ms": r["p999_ms"],
            "max_ms": r["max_ms"],
            "non201": r["non201"],
            "socket_errors": r["errors_connect"] + r["errors_read"] + r["errors_timeout"],
            "orders_created": int(m1.get("order_api_orders_created_total", 0)
                                  - m0.get("order_api_orders_created_total", 0)),
            "group_commits": int(m1.get("order_api_group_commits_total", 0)
                                 - m0.get("order_api_group_commits_total", 0)),
            "sqs_messages_sent": int(m1.get("order_api_sqs_messages_sent_total", 0)
                                     - m0.get("order_api_sqs_messages_sent_total", 0)),
            "sqs_requests": int(m1.get("order_api_sqs_requests_total", 0)
                                - m0.get("order_api_sqs_requests_total", 0)),
            "outbox_backlog_end": int(m1.get("order_api_outbox_backlog", 0)),
            "api_vmhwm_kb": hwm,
            "api_stop_s": stops[api.name]["stop_s"],
            "left_unsent_at_stop": left,
            "cpu": CpuSampler.between(s0, s1),
        }
        row["sqs_publish_per_s"] = round(row["sqs_messages_sent"] / dur, 1)
        log(f"load c={conns}: {row['accepted_per_s']}/s accepted, p99 {row['p99_ms']} ms, "
            f"non-201 {row['non201']}, published {row['sqs_publish_per_s']}/s, "
            f"API VmHWM {hwm} kB")
        return row

    def profile(self):
        """perf record (DWARF call graphs) of the API under load: a separate,
        unmeasured run after the load levels."""
        conns, secs, freq = self.a.profile_conns, self.a.profile_s, 299
        q = self.new_queue("prof")
        api = self.start_api(q, "profile")
        data = self.log_dir / "perf.data"
        rep = {"connections": conns, "seconds": secs, "frequency": freq}
        try:
            w = self.wrk(f"http://127.0.0.1:{api.port}", conns, secs + 3, "profile",
                         {"CUSTOMER_ID": f"prof-{self.run_id}"})
            time.sleep(1.5)
            s0 = self.sampler.snapshot()
            perf = Proc("perf", ["perf", "record", "-F", str(freq), "--call-graph", "dwarf,16384",
                                 "-o", str(data), "-p", str(api.pid), "--", "sleep", str(secs)],
                        dict(os.environ), self.log_dir / "perf.log", "perf")
            perf.wait(secs + 60)
            s1 = self.sampler.snapshot()
            perf.stop(5)
            w.wait(secs + 30)
            w.stop(5)
            rep["wrk"] = parse_wrk(w.log_path.read_text())
            rep["cpu"] = CpuSampler.between(s0, s1)
        finally:
            self.stop([api])
            self.delete_queue(q)
            self.abandon_unsent(q)

        def report(*args):
            r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-g", "none"] + list(args),
                               capture_output=True, text=True, timeout=300)
            return [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
        rep["by_dso"] = report("--no-children", "--sort", "dso", "--percent-limit", "0.5")[:15]
        rep["self"] = report("--no-children", "--sort", "dso,sym", "--percent-limit", "1")[:20]
        skip = ("clone3", "start_thread", "__libc_start", "_start", "main", "__clone")
        incl = []
        for l in report("--children", "--sort", "dso,sym", "--percent-limit", "2"):
            parts = l.split()
            if len(parts) < 5 or parts[3] != "[.]":
                continue
            sym = " ".join(parts[4:])
            if sym.startswith("0x") or sym.startswith(skip):
                continue
            incl.append(l)
        rep["inclusive"] = incl[:30]
        return rep

    # ------------------------------------------------------------- phase: e2e
    def post_orders(self, api, n, tag, label):
        """POSTs exactly n orders (n even) with wrk -t2 -c64; returns (seconds, wrk result)."""
        per_thread = n // 2
        m0 = metrics(api.metrics_port)
        base = sum(v for k, v in m0.items() if k.startswith('order_api_requests_total{route="/orders"'))
        bound = max(60, n // 200)
        t0 = time.monotonic()
        w = self.wrk(f"http://127.0.0.1:{api.port}", self.a.post_conns, bound, label,
                     {"CUSTOMER_ID": tag, "ORDERS_PER_THREAD": str(per_thread)})
        last, last_change = -1, time.monotonic()
        while True:
            m = metrics(api.metrics_port)
            done = sum(v for k, v in m.items()
                       if k.startswith('order_api_requests_total{route="/orders"')) - base
            now = time.monotonic()
            if done >= n:
                break
            if done != last:
                last, last_change = done, now
            if not w.alive():
                break
            if now - last_change > 10:
                log(f"POST phase stalled at {done}/{n}")
                break
            if now - t0 > bound + 5:
                break
            time.sleep(0.05)
        t1 = time.monotonic()
        w.send(signal.SIGINT)  # wrk prints its summary on SIGINT
        w.wait(15)
        w.stop(5)
        return t1 - t0, parse_wrk(w.log_path.read_text())

    def counts(self, tag, since):
        return self.q1(
            "SELECT count(*), count(*) FILTER (WHERE status = 'PROCESSED') FROM orders"
            " WHERE customer_id = %s AND created_at >= %s", tag, since)

    def backlog(self, tag):
        return self.q1(
            "SELECT count(*) FROM outbox o JOIN orders r ON r.id = o.order_id"
            " WHERE r.customer_id = %s AND o.sent_at IS NULL", tag)[0]

    def e2e(self, workers, n, max_in_flight, label):
        tag = f"{label}-{self.run_id}-{self.server}"
        q = self.new_queue(label)
        since = self.q1("SELECT now() - interval '1 second'")[0]
        api = self.start_api(q, label)
        procs = [api]
        row = {"label": label, "workers": workers, "orders_requested": n,
               "max_in_flight_setting": max_in_flight, "customer_id": tag}
        try:
            # 1. POST every order, no worker running
            s0 = self.sampler.snapshot()
            post_s, wr = self.post_orders(api, n, tag, label)
            total, _ = self.counts(tag, since)
            row.update(orders=total, post_s=round(post_s, 2), post_per_s=round(total / post_s, 1),
                       post_non201=wr["non201"], post_p99_ms=wr["p99_ms"])
            log(f"{label}: {total} orders POSTed in {post_s:.1f}s ({total / post_s:.0f}/s)")
            if total == 0:
                raise RuntimeError("no order was created")
            # 2. wait until the outbox has sent them all
            t0 = time.monotonic()
            wait_until(lambda: self.backlog(tag) == 0, self.a.enqueue_timeout,
                       f"outbox backlog of {tag} to reach 0", interval=0.25)
            row["enqueue_wait_s"] = round(time.monotonic() - t0, 2)
            row["enqueue_per_s"] = round(total / (post_s + row["enqueue_wait_s"]), 1)
            s1 = self.sampler.snapshot()
            row["cpu_post"] = CpuSampler.between(s0, s1)
            row["queue_depth_before"] = self.queue_depth(q)[0]
            api_m0 = metrics(api.metrics_port)
            row["api_vmhwm_kb"] = api.vmhwm_kb()
            # 3. start the workers and time until every order is PROCESSED
            self.reap()
            ws = []
            s2 = self.sampler.snapshot()
            t_start = time.time()
            for i in range(workers):
                ws.append(self.start_worker(q, f"{label}-{i + 1}", max_in_flight))
            procs += ws
            deadline = time.monotonic() + max(self.a.process_timeout_min, total / self.a.min_rate)
            max_inflight = [0] * workers
            processed, timeline, timed_out = 0, [], False
            while True:
                _, processed = self.counts(tag, since)
                for i, w in enumerate(ws):
                    if not w.alive():
                        raise RuntimeError(f"{w.name} exited: {w.log_path.read_text()[-2000:]}")
                    try:
                        v = metrics(w.port).get("order_worker_messages_in_flight", 0)
                        max_inflight[i] = max(max_inflight[i], int(v))
                    except OSError:
                        pass
                timeline.append((round(time.time() - t_start, 2), processed, sum(max_inflight)))
                if processed >= total:
                    break
                if time.monotonic() >= deadline:
                    timed_out = True
                    log(f"{label}: timed out with {processed}/{total} PROCESSED")
                    break
                time.sleep(0.25)
            s3 = self.sampler.snapshot()
            row["cpu_workers"] = CpuSampler.between(s2, s3)
            # 4. wait for the last DeleteMessageBatch calls (nothing left in flight)
            def idle():
                try:
                    return all(metrics(w.port).get("order_worker_messages_in_flight", 1) == 0
                               for w in ws)
                except OSError:
                    return False
            try:
                wait_until(idle, 30, "workers to have nothing in flight", interval=0.2)
            except TimeoutError as e:
                log(str(e))
            wm = [metrics(w.port) for w in ws]
            api_m1 = metrics(api.metrics_port)
            row["worker_vmhwm_kb"] = [w.vmhwm_kb() for w in ws]
            row["api_vmhwm_kb"] = api.vmhwm_kb()
            row["queue_depth_after"] = self.queue_depth(q)
            # Workers end only after their 20 s long polls return: let that
            # happen while the next run POSTs its orders (reaped before its
            # workers start), instead of waiting here.
            for p in ws + [api]:
                p.send(signal.SIGTERM)
            self.pending.append((ws + [api], q, row))
            procs, q = [], None
            # 5. figures and checks
            t_last, t_p10, t_p90, n_proc = self.q1(
                "SELECT extract(epoch FROM max(processed_at)),"
                " extract(epoch FROM percentile_disc(0.1) WITHIN GROUP (ORDER BY processed_at)),"
                " extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY processed_at)),"
                " count(processed_at)"
                " FROM orders WHERE customer_id = %s AND created_at >= %s", tag, since)
            elapsed = float(t_last) - t_start if t_last else None
            row.update(
                processed=n_proc, timed_out=timed_out,
                elapsed_s=round(elapsed, 2) if elapsed else None,
                throughput_per_s=round(n_proc / elapsed, 1) if elapsed else 0.0,
                steady_per_s=round(0.8 * n_proc / (float(t_p90) - float(t_p10)), 1)
                if t_p90 and t_p10 and float(t_p90) > float(t_p10) else None,
                max_in_flight_seen=max_inflight,
                timeline=timeline[:: max(1, len(timeline) // 120)],
            )
            pay, pay_distinct = self.q1(
                "SELECT count(*), count(DISTINCT p.order_id) FROM payments p"
                " JOIN orders o ON o.id = p.order_id WHERE o.customer_id = %s AND o.created_at >= %s",
                tag, since)
            min_age, = self.q1(
                "SELECT extract(epoch FROM min(processed_at - created_at)) FROM orders"
                " WHERE customer_id = %s AND created_at >= %s AND processed_at IS NOT NULL",
                tag, since)
            min_hold, = self.q1(
                "SELECT extract(epoch FROM min(p.at - s.at)) FROM orders o"
                " JOIN order_events s ON s.order_id = o.id AND s.step = 'PAYMENT_STARTED'"
                " JOIN order_events p ON p.order_id = o.id AND p.step = 'PROCESSED'"
                " WHERE o.customer_id = %s AND o.created_at >= %s", tag, since)
            row.update(payments=pay, payments_distinct=pay_distinct,
                       min_processed_minus_created_s=round(float(min_age), 3) if min_age is not None else None,
                       min_payment_started_to_processed_s=round(float(min_hold), 3) if min_hold is not None else None)
            api_req = int(api_m1.get("order_api_sqs_requests_total", 0))
            api_req_post = int(api_m0.get("order_api_sqs_requests_total", 0))
            w_req = [int(m.get("order_worker_sqs_requests_total", 0)) for m in wm]
            row.update(
                api_sqs_requests=api_req, api_sqs_requests_during_workers=api_req - api_req_post,
                api_sqs_messages_sent=int(api_m1.get("order_api_sqs_messages_sent_total", 0)),
                api_sqs_errors=int(api_m1.get("order_api_sqs_errors_total", 0)),
                worker_sqs_requests=w_req,
                worker_sqs_errors=[int(m.get("order_worker_sqs_errors_total", 0)) for m in wm],
                worker_received=[int(m.get("order_worker_messages_received_total", 0)) for m in wm],
                worker_processed=[int(m.get("order_worker_orders_processed_total", 0)) for m in wm],
                worker_redelivered=[int(m.get("order_worker_messages_redelivered_total", 0)) for m in wm],
                worker_skipped=[int(m.get("order_worker_messages_skipped_total", 0)) for m in wm],
                worker_failed=[int(m.get("order_worker_messages_failed_total", 0)) for m in wm],
                sqs_requests_per_order=round((api_req + sum(w_req)) / total, 4),
            )
            row["checks"] = {
                "all_processed": n_proc == total,
                "one_payment_per_order": pay == total and pay_distinct == total,
                "min_processed_minus_created_ge_delay":
                    min_age is not None and float(min_age) >= self.a.payment_delay_ms / 1000.0,
                "min_hold_ge_delay": min_hold is not None
                    and float(min_hold) >= self.a.payment_delay_ms / 1000.0 - 0.005,
                "no_sqs_errors": row["api_sqs_errors"] == 0 and sum(row["worker_sqs_errors"]) == 0,
            }
            log(f"{label}: {n_proc}/{total} PROCESSED in {row['elapsed_s']}s = "
                f"{row['throughput_per_s']}/s (steady {row['steady_per_s']}/s); "
                f"{row['sqs_requests_per_order']} SQS requests/order; worker VmHWM "
                f"{row['worker_vmhwm_kb']} kB; in flight max {max_inflight}; checks {row['checks']}")
            return row
        finally:
            if procs:
                self.stop(procs)
            if q:
                self.delete_queue(q)

    def reap(self):
        """Waits for the processes of earlier e2e runs, then deletes their queues."""
        while self.pending:
            procs, q, row = self.pending.pop(0)
            row["stop"] = self.stop(procs)
            self.delete_queue(q)

    # ------------------------------------------------------------- all
    def run(self):
        t0 = time.monotonic()
        self.sampler.start()
        self.create_db()
        try:
            if self.a.ceiling_s > 0:
                self.res["sqs_ceiling"] = self.sqs_ceiling()
                self.save()
            if self.a.warmup_s > 0:
                log(f"warm-up: {self.a.warmup_s}s at c=64 (not measured)")
                self.warmup()
            for c in self.a.levels:
                self.res["load"].append(self.load_level(c))
                self.save()
            if self.a.profile_s > 0:
                try:
                    self.res["profile"] = self.profile()
                except Exception as e:
                    log(f"profile failed (not fatal): {e}")
                    self.res["profile"] = {"error": str(e)}
            for w in self.a.workers:
                self.res["e2e"].append(self.e2e(w, self.a.orders, self.a.max_in_flight, f"e2e-w{w}"))
                self.save()
            if self.a.frugal_orders > 0:
                self.res["frugal"] = self.e2e(1, self.a.frugal_orders, 1000, "frugal")
        finally:
            try:
                self.reap()
            except Exception as e:
                log(f"reap: {e}")
            Proc.stop_all()
            for q in list(self.queues):
                self.delete_queue(q)
            self.sampler.stop_ev.set()
            self.drop_db()
            self.res["elapsed_s"] = round(time.monotonic() - t0, 1)
            self.save()

    def save(self):
        p = self.out_dir / f"{self.server}.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.res, indent=1, default=str))
        tmp.replace(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sqs-name", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--sqs-pid", default="", help="pid(s) of the SQS server, for CPU accounting")
    ap.add_argument("--database-url", required=True, help="any database URL of the cluster (role with CREATEDB)")
    ap.add_argument("--bin-dir", default=str(ROOT / "build"))
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--run-id", default=uuid.uuid4().hex[:8])
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--levels", default="16,64,256")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--warmup-s", type=int, default=5)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--max-in-flight", type=int, default=2500)
    ap.add_argument("--payment-delay-ms", type=int, default=2000)
    ap.add_argument("--frugal-orders", type=int, default=5000)
    ap.add_argument("--post-conns", type=int, default=64)
    ap.add_argument("--profile-s", type=int, default=8)
    ap.add_argument("--profile-conns", type=int, default=64)
    ap.add_argument("--ceiling-s", type=int, default=5, help="seconds per SQS-alone round (0: skip)")
    ap.add_argument("--ceiling-rounds-max", type=int, default=6)
    ap.add_argument("--enqueue-timeout", type=int, default=180)
    ap.add_argument("--process-timeout-min", type=int, default=90)
    ap.add_argument("--min-rate", type=float, default=150.0,
                    help="the e2e wait gives up after orders/min-rate seconds (at least --process-timeout-min)")
    ap.add_argument("--keep-db", action="store_true")
    a = ap.parse_args()
    a.levels = [int(x) for x in a.levels.split(",") if x]
    a.workers = [int(x) for x in a.workers.split(",") if x]
    a.orders += a.orders % 2
    a.frugal_orders += a.frugal_orders % 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    b = Bench(a)
    try:
        b.run()
    except Interrupted as e:
        log(f"interrupted ({e}); stopped what it started")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
