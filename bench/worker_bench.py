#!/usr/bin/env python3
"""bench/worker_bench.py - focused end-to-end runs of ONE order-worker.

Where bench/run.sh measures the whole system, this measures one worker in one
configuration, against the PostgreSQL and SQS server that are already running
(scripts/services.sh; their settings are read from .local/env), with the
binaries of --bin-dir. It reuses bench.py's machinery: a database of its own
(created, migrated, dropped), a queue of its own, the CPU sampler.

One run: POST --orders orders through a fresh order-api with no worker
running; wait until the outbox has sent them all (the whole run is in the
queue); start one worker with the case's environment; sample its /metrics
every 0.5 s until every order is PROCESSED or FAILED; stop it (timing the
stop); check the database. Printed and written as JSON (--out-dir):

  throughput    orders / (last processed_at - worker start); steady = the
                10th-90th percentile of processed_at
  cpu_s_per_1k  the worker's CPU time (utime + stime from /proc/PID/stat,
                read just before it is stopped) per 1,000 orders
  vmhwm_mib     the worker's peak resident memory
  visibility    ChangeMessageVisibilityBatch calls sent to extend held
                messages, their mean and peak rate (per 0.5 s sample), the
                messages extended, and the messages whose visibility ran out
  redelivered   messages received more than once (ApproximateReceiveCount > 1):
                0 when no visibility ran out; also the most DELIVERED timeline
                rows of any one order and the messages acknowledged unpaid
                (duplicates: a second copy the API published when its
                publisher and relay both sent a row, under overload)

Cases (--case) are named environments; --env K=V adds to or overrides them:
  defaults     nothing but what the run needs: every WORKER_* default
  tuned        WORKER_MAX_IN_FLIGHT=8000 WORKER_MAX_POLLS=40
  visibility   WORKER_MAX_IN_FLIGHT=10000, PAYMENT_DELAY_MS=60000 (twice the
               30 s visibility timeout: every message is extended ~4 times)
  http-provider  PAYMENT_PROVIDER=http against bench/payment_provider.py (started
               here on a free port, answering after --stub-delay-ms, 2000),
               WORKER_MAX_IN_FLIGHT=3000 (ceiling 3000 / 2 s = 1,500/s). Adds
               the stub's figures (calls, charges, replays, its CPU) and
               checks: the stub charged every order of the run exactly once,
               nothing else, and each payments row holds the stub's payment id

Usage: bench/worker_bench.py --case visibility [--orders N] [--env K=V ...]
"""
import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import bench as B

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "defaults": {},
    "tuned": {"WORKER_MAX_IN_FLIGHT": "8000", "WORKER_MAX_POLLS": "40"},
    "visibility": {"WORKER_MAX_IN_FLIGHT": "10000", "PAYMENT_DELAY_MS": "60000"},
    "http-provider": {"PAYMENT_PROVIDER": "http", "WORKER_MAX_IN_FLIGHT": "3000"},
}
STUB = ROOT / "bench" / "payment_provider.py"


def local_env():
    out = {}
    for line in (ROOT / ".local" / "env").read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            out[k] = v.strip("'\"")
    return out


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / B.CLK_TCK


class WorkerRun(B.Bench):
    def classify(self, pid, ppid, comm, cmd):
        if ppid == os.getpid() and STUB.name in cmd:
            return "payment stub"
        return super().classify(pid, ppid, comm, cmd)

    def start_stub(self, label):
        """bench/payment_provider.py on a free port; its /pay URL and Proc."""
        port = B.free_port()
        p = B.Proc(f"payment-stub-{label}",
                   [sys.executable, str(STUB), "--port", str(port),
                    "--delay-ms", str(self.a.stub_delay_ms),
                    "--max-seconds", str(self.a.timeout + self.a.enqueue_timeout + 600)],
                   os.environ.copy(), self.log_dir / f"payment-stub-{label}.log", "payment stub")
        B.wait_until(lambda: self._stub_up(port), 30, "the payment stub to answer")
        return f"http://127.0.0.1:{port}", p

    @staticmethod
    def _stub_up(port):
        try:
            return B.http_get(f"http://127.0.0.1:{port}/stats")[0] == 200
        except OSError:
            return False

    def stub_figures(self, base, stub, tag, since, total, worker_cpu_s):
        stats = json.loads(B.http_get(f"{base}/stats")[1])
        charges = json.loads(B.http_get(f"{base}/charges", timeout=30)[1])
        rows = self.db_rows(
            "SELECT o.id::text, o.status, p.provider_payment_id FROM orders o"
            " LEFT JOIN payments p ON p.order_id = o.id"
            " WHERE o.customer_id = %s AND o.created_at >= %s", tag, since)
        ids = {r[0] for r in rows}
        stub_cpu_s = proc_cpu_s(stub.pid)
        out = {
            "stub_delay_ms": stats.get("delay_ms"),
            "stub_requests": stats.get("requests", 0),
            "stub_charges": stats.get("charges", 0),
            "stub_replays": stats.get("replays", 0),  # retries/redeliveries: same key again
            "stub_bad_requests": stats.get("bad_requests", 0),
            "stub_key_mismatch": stats.get("key_mismatch", 0),
            "stub_max_pending": stats.get("max_pending", 0),
            "stub_max_open_connections": stats.get("max_open_connections", 0),
            "stub_connections_accepted": stats.get("connections", 0),
            "stub_cpu_s": round(stub_cpu_s, 2),
            "stub_cpu_s_per_1k": round(1000 * stub_cpu_s / total, 3) if total else None,
            "worker_plus_stub_cpu_s_per_1k": round(1000 * (stub_cpu_s + worker_cpu_s) / total, 3)
            if total else None,
        }
        out["stub_checks"] = {
            "every_order_charged_once_at_stub": set(charges) == ids and len(ids) == total
            and stats.get("charges") == total,
            "payment_ids_match_stub": all(
                st == "PROCESSED" and pid == charges.get(oid, {}).get("payment_id")
                for oid, st, pid in rows),
            "no_bad_requests_at_stub": stats.get("bad_requests", 0) == 0
            and stats.get("key_mismatch", 0) == 0,
        }
        return out

    def db_rows(self, sql, *params):
        return self.db.execute(sql, params).fetchall()

    def worker_env(self, queue_url, port, extra):
        env = self.env(queue_url, {"METRICS_PORT": str(port)})
        env.update(extra)
        return env

    def run_case(self, label, extra, n):
        tag = f"{label}-{self.run_id}"
        q = self.new_queue(label)
        since = self.q1("SELECT now() - interval '1 second'")[0]
        api = self.start_api(q, label)
        w = stub = None
        row = {"label": label, "env": dict(extra), "orders_requested": n}
        try:
            if extra.get("PAYMENT_PROVIDER") == "http" and "PAYMENT_URL" not in extra:
                base, stub = self.start_stub(label)
                extra = dict(extra, PAYMENT_URL=f"{base}/pay")
            post_s, _ = self.post_orders(api, n, tag, label)
            total, _ = self.counts(tag, since)
            row.update(orders=total, post_per_s=round(total / post_s, 1))
            B.log(f"{label}: {total} orders POSTed in {post_s:.1f}s")
            B.wait_until(lambda: self.backlog(tag) == 0, self.a.enqueue_timeout,
                         f"outbox backlog of {tag} to reach 0", interval=0.25)
            port = B.free_port()
            s0 = self.sampler.snapshot()
            t_start = time.time()
            w = B.Proc(f"order-worker-{label}", [str(self.bin / "order-worker")],
                       self.worker_env(q, port, extra), self.log_dir / f"worker-{label}.log",
                       "order-worker")
            deadline = time.monotonic() + self.a.timeout
            samples, done = [], 0
            while True:
                if not w.alive():
                    raise RuntimeError(f"worker exited: {w.log_path.read_text()[-2000:]}")
                done = self.q1("SELECT count(*) FROM orders WHERE customer_id = %s AND"
                               " created_at >= %s AND status <> 'PENDING'", tag, since)[0]
                try:
                    m = B.metrics(port)
                    samples.append((time.time() - t_start, m))
                except OSError:
                    pass
                if done >= total or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
            s1 = self.sampler.snapshot()
            # the last deletes: nothing left in flight
            def idle():
                try:
                    return B.metrics(port).get("order_worker_messages_in_flight", 1) == 0
                except OSError:
                    return False
            try:
                B.wait_until(idle, 30, "nothing in flight", interval=0.2)
            except TimeoutError as e:
                B.log(str(e))
            m = B.metrics(port)
            cpu_s = proc_cpu_s(w.pid)
            hwm = w.vmhwm_kb()
            t0 = time.monotonic()
            w.send(signal.SIGTERM)
            rc = w.wait(60)
            stop_s = time.monotonic() - t0
            w.stop(5)
            w = None
            row.update(self.figures(tag, since, t_start, total, samples, m, cpu_s, hwm, rc, stop_s))
            if stub:
                row.update(self.stub_figures(base, stub, tag, since, total, cpu_s))
                row["checks"].update(row.pop("stub_checks"))
            row["cpu"] = B.CpuSampler.between(s0, s1)
            return row
        finally:
            procs = [p for p in (w, api, stub) if p]
            self.stop(procs)
            self.delete_queue(q)

    def figures(self, tag, since, t_start, total, samples, m, cpu_s, hwm, rc, stop_s):
        t_last, t10, t90, processed, failed = self.q1(
            "SELECT extract(epoch FROM max(coalesce(processed_at, updated_at))),"
            " extract(epoch FROM percentile_disc(0.1) WITHIN GROUP (ORDER BY processed_at)),"
            " extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY processed_at)),"
            " count(*) FILTER (WHERE status = 'PROCESSED'), count(*) FILTER (WHERE status = 'FAILED')"
            " FROM orders WHERE customer_id = %s AND created_at >= %s", tag, since)
        elapsed = float(t_last) - t_start if t_last else None
        pay, pay_distinct = self.q1(
            "SELECT count(*), count(DISTINCT p.order_id) FROM payments p JOIN orders o"
            " ON o.id = p.order_id WHERE o.customer_id = %s AND o.created_at >= %s", tag, since)
        max_delivered = self.q1(
            "SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM order_events e"
            " JOIN orders o ON o.id = e.order_id WHERE o.customer_id = %s AND o.created_at >= %s"
            " AND e.step = 'DELIVERED' GROUP BY e.order_id) x", tag, since)[0]
        vis_calls = [(t, s.get("order_worker_visibility_calls_total", 0)) for t, s in samples]
        rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(vis_calls, vis_calls[1:])
                 if b[0] > a[0]]
        active = [r for r in rates if r > 0]
        calls = int(m.get("order_worker_visibility_calls_total", 0))
        first = next((t for t, c in vis_calls if c > 0), None)
        out = {
            "processed": processed, "failed": failed,
            "elapsed_s": round(elapsed, 2) if elapsed else None,
            "throughput_per_s": round((processed + failed) / elapsed, 1) if elapsed else 0,
            "steady_per_s": round(0.8 * processed / (float(t90) - float(t10)), 1)
            if t10 and t90 and float(t90) > float(t10) else None,
            "max_in_flight": int(max((s.get("order_worker_messages_in_flight", 0)
                                      for _, s in samples), default=0)),
            "in_flight_timeline": [(round(t, 1), int(s.get("order_worker_messages_in_flight", 0)))
                                   for t, s in samples],
            "mean_receipt_to_done_ms": round(
                1000 * m.get("order_worker_payment_duration_seconds_sum", 0)
                / m["order_worker_payment_duration_seconds_count"])
            if m.get("order_worker_payment_duration_seconds_count") else None,
            "worker_cpu_s": round(cpu_s, 2),
            "cpu_s_per_1k": round(1000 * cpu_s / total, 3) if total else None,
            "vmhwm_mib": round(hwm / 1024, 1) if hwm else None,
            "sqs_requests": int(m.get("order_worker_sqs_requests_total", 0)),
            "sqs_requests_per_order": round(m.get("order_worker_sqs_requests_total", 0) / total, 3),
            "sqs_errors": int(m.get("order_worker_sqs_errors_total", 0)),
            "visibility_calls": calls,
            "visibility_calls_per_s_mean": round(calls / (vis_calls[-1][0] - first), 1)
            if first is not None and vis_calls[-1][0] > first else 0,
            "visibility_calls_per_s_peak": round(max(active), 1) if active else 0,
            "visibility_calls_per_s_timeline": [(round(b[0], 1), round((b[1] - a[1]) / (b[0] - a[0])))
                                                for a, b in zip(vis_calls, vis_calls[1:])
                                                if b[0] > a[0]],
            "visibility_extended": int(m.get("order_worker_visibility_extended_total", 0)),
            "visibility_expired": int(m.get("order_worker_visibility_expired_total", 0)),
            "redelivered": int(m.get("order_worker_messages_redelivered_total", 0)),
            # second copies the API published (receive count 1), acknowledged unpaid
            "duplicates_skipped": int(m.get("order_worker_messages_skipped_total", 0)),
            "max_delivered_per_order": int(max_delivered),
            "payments": pay, "payments_distinct": pay_distinct,
            "stop_rc": rc, "stop_s": round(stop_s, 2),
        }
        out["checks"] = {
            "all_done": processed + failed == total,
            "one_payment_per_processed_order": pay == processed and pay_distinct == processed,
            "no_redelivery": out["redelivered"] == 0,
            "no_visibility_expired": out["visibility_expired"] == 0,
            "no_sqs_errors": out["sqs_errors"] == 0,
            "stopped_cleanly": rc == 0,
        }
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), required=True)
    ap.add_argument("--label", help="names the run (default: the case)")
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--env", action="append", default=[], metavar="K=V")
    ap.add_argument("--bin-dir", default=str(ROOT / "build"))
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--timeout", type=int, default=300, help="seconds the worker may take")
    ap.add_argument("--stub-delay-ms", type=int, default=2000,
                    help="http-provider: how long the payment stub takes to answer")
    ap.add_argument("--sqs", choices=["localstack", "elasticmq"], default="localstack",
                    help="the SQS server: LocalStack of .local/env, or ElasticMQ started with"
                         " bench/elasticmq.sh (ELASTICMQ_PORT as for that script)")
    a = ap.parse_args()
    le = local_env()
    run_id = time.strftime("%Y%m%d%H%M%S")
    out_dir = Path(a.out_dir or ROOT / ".local" / "bench" / f"worker-{run_id}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if a.sqs == "localstack":
        endpoint, pid_file = le["AWS_ENDPOINT_URL_SQS"], ROOT / ".local" / "localstack.pid"
    else:
        endpoint = f"http://127.0.0.1:{os.environ.get('ELASTICMQ_PORT', '9324')}"
        pid_file = ROOT / ".local" / "elasticmq" / "elasticmq.pid"
    ns = argparse.Namespace(
        sqs_name=a.sqs, endpoint=endpoint,
        sqs_pid=pid_file.read_text().split()[0] if pid_file.exists() else "",
        database_url=le["DATABASE_URL"], bin_dir=a.bin_dir, out_dir=str(out_dir),
        run_id=f"w{run_id}", orders=a.orders, keep_db=False, post_conns=64,
        enqueue_timeout=300, payment_delay_ms=2000, timeout=a.timeout,
        stub_delay_ms=a.stub_delay_ms)
    extra = dict(CASES[a.case])
    for kv in a.env:
        k, _, v = kv.partition("=")
        extra[k] = v
    label = a.label or a.case
    signal.signal(signal.SIGTERM, B._on_signal)
    signal.signal(signal.SIGINT, B._on_signal)
    r = WorkerRun(ns)
    r.sampler.start()
    r.create_db()

    def case():
        row = r.run_case(label, extra, a.orders)
        row["machine_cpu_groups"] = row.pop("cpu")
        (out_dir / f"{label}.json").write_text(json.dumps(row, indent=1, default=str))
        print(json.dumps({k: v for k, v in row.items() if k != "machine_cpu_groups"}, indent=1,
                         default=str))
        B.log(f"written {out_dir / (label + '.json')}")
        return 0 if all(row["checks"].values()) else 1

    return B.run_closing(r, case)


if __name__ == "__main__":
    sys.exit(main())
