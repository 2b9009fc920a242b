#!/usr/bin/env python3
"""bench/report.py - turns the JSON written by bench/bench.py into RESULTS.md."""
import argparse
import datetime
import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB32_KB = 32 * 1024

TARGETS = {
    "worker_rate": 1000.0,
    "api_rate": 5000.0,
    "api_p99": 20.0,
    "sqs_per_order": 0.35,
    "rss_kb": MIB32_KB,
}


def sh(*args, strip=True):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
        return out.strip() if strip else out
    except Exception:
        return ""


def machine():
    lscpu = sh("lscpu")
    model = re.search(r"Model name:\s*(.+)", lscpu)
    virt = re.search(r"Hypervisor vendor:\s*(.+)", lscpu)
    mem_kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = "?"
    commit = sh("git", "-C", str(ROOT), "rev-parse", "HEAD")
    subject = sh("git", "-C", str(ROOT), "log", "-1", "--format=%s")
    dirty = [l for l in sh("git", "-C", str(ROOT), "status", "--porcelain", strip=False).splitlines()
             if not l[3:].startswith("bench/")]
    pg = sh(str(next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))), "postgres")),
            "--version")
    ls = sh(str(ROOT / ".venv/bin/python"), "-c",
            "import importlib.metadata as m; print(m.version('localstack-core'))") or sh(
        str(ROOT / ".venv/bin/python"), "-c",
        "import importlib.metadata as m; print(m.version('localstack'))")
    wrk = sh("sh", "-c", "wrk -v 2>&1 | head -n 1")
    java = sh("sh", "-c", "java -version 2>&1 | head -n 1")
    return {
        "CPU": (model.group(1) if model else "?") + (f" ({virt.group(1)} guest)" if virt else ""),
        "Cores": str(os.cpu_count()),
        "Memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "Kernel": sh("uname", "-sr"),
        "Debian": debian,
        "Date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "Git commit": f"{commit[:12]} ({subject})" + (
            f"; uncommitted changes outside bench/: {', '.join(l[3:] for l in dirty)}" if dirty else ""),
        "PostgreSQL": pg,
        "LocalStack": ls or "?",
        "ElasticMQ": os.environ.get("ELASTICMQ_VERSION") or "?",
        "Java": java,
        "wrk": wrk,
    }


def fmt(v, nd=0):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def mib(kb):
    return "–" if kb is None else f"{kb / 1024:.1f} MiB"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


CPU_ORDER = ["wrk", "order-api", "order-worker", "postgresql (bench database)",
             "postgresql (shared background)", "sqs server", "bench harness", "perf (profiling only)",
             "other: postgresql backends of other databases", "other processes",
             "machine (all processes)"]


def cpu_key(k):
    for i, p in enumerate(CPU_ORDER):
        if k.startswith(p):
            return i
    return len(CPU_ORDER)


def cpu_cols(dicts):
    keys = set()
    for d in dicts:
        keys |= {k for k in d if not k.startswith("_")}
    return sorted(keys, key=cpu_key)


def cpu_s_per_1000(cpu, prefix, orders_per_s):
    """CPU seconds per 1,000 orders of the processes named prefix*: their
    summed % of one core over a phase, divided by the orders/s of that phase."""
    pct = sum(v for k, v in cpu.items() if k.startswith(prefix))
    return f"{pct / 100 / orders_per_s * 1000:.3f}" if pct and orders_per_s else "–"


def top_other(cpu):
    return ", ".join(f"{c} {v:.0f}%" for c, v in cpu.get("_other_top", []) if v >= 1) or "–"


def cpu_words(cpu, keys=("order-worker", "order-api", "sqs server", "postgresql (bench database)",
                         "wrk", "other processes")):
    parts = []
    for k in sorted(cpu, key=cpu_key):
        if any(k.startswith(p) for p in keys) and cpu[k] >= 1:
            parts.append(f"{k} {cpu[k]:.0f}%")
    return f"machine {cpu.get('machine (all processes)', 0):.0f}% of 200%: " + ", ".join(parts)


def bound(cpu, single_threaded=("order-worker", "sqs server (localstack)")):
    """A one-line guess at what limits a phase, from its CPU use."""
    if not cpu:
        return "no CPU data"
    hot = [k for k in cpu if any(k.startswith(s) for s in single_threaded) and cpu[k] >= 85]
    mach = cpu.get("machine (all processes)", 0)
    if hot:
        why = f"{hot[0]} at {cpu[hot[0]]:.0f}% of one core (one core is all it can use)"
    elif mach >= 180:
        why = "the 2 cores are saturated"
    else:
        why = f"not CPU-bound (machine {mach:.0f}% of 200%): waiting on round trips"
    return f"{why}; {cpu_words(cpu)}"


def pct_short(measured, target, higher_is_better=True):
    if measured is None or target is None:
        return "–"
    if higher_is_better:
        return "–" if measured >= target else f"{(target - measured) / target * 100:.0f}% short"
    return "–" if measured <= target else f"{(measured - target) / target * 100:.0f}% over"


WORKER_SECTION = "## Worker: focused runs (bench/worker_bench.py)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--servers", required=True)
    a = ap.parse_args()
    work = Path(a.work)
    res = {}
    for s in a.servers.split():
        p = work / f"{s}.json"
        if p.exists():
            res[s] = json.loads(p.read_text())
    m = machine()
    L = []
    w = L.append
    w("# Benchmark results: fast and frugal\n")
    w("Written by `bench/run.sh` (see [README.md](README.md) for what each figure means). "
      "All processes — wrk, order-api, order-worker(s), PostgreSQL and the SQS server — run on the "
      "same 2-core machine and talk over loopback, so every figure below is a figure of the whole "
      "machine, not of one program.\n")
    w("## Machine\n")
    w(table(["", ""], [[k, v] for k, v in m.items()]))
    w("")
    w("## Command\n")
    w(f"```\n{a.command}\n```\n")
    w(f"Total wall time of that command: **{a.seconds // 60} min {a.seconds % 60} s** "
      "(bootstrap and build included; "
      + ", ".join(f"{s}: {r.get('elapsed_s', 0):.0f} s of measurements" for s, r in res.items()) + ").\n")
    orders = {s: r.get("orders") for s, r in res.items()}
    w(f"Orders per end-to-end run: {', '.join(f'{s} {fmt(n)}' for s, n in orders.items())}; "
      "payment delay 2,000 ms; WORKER_MAX_IN_FLIGHT 2,500 (1,000 in the memory run).\n")

    # ------------------------------------------------------------ targets
    w("## Targets\n")
    rows = []
    for s, r in res.items():
        e1 = next((e for e in r.get("e2e", []) if e["workers"] == 1), None)
        if e1:
            v = e1["throughput_per_s"]
            ceil = e1["max_in_flight_setting"] / 2.0
            rows.append([f"one worker ≥ 1,000 orders/s end to end (2 s delay)", s,
                         f"{fmt(v, 0)}/s (steady state {fmt(e1.get('steady_per_s'), 0)}/s; "
                         f"Little's-law ceiling {fmt(ceil, 0)}/s)",
                         "met" if v >= TARGETS["worker_rate"] else "**missed**",
                         pct_short(v, TARGETS["worker_rate"]),
                         "–" if v >= TARGETS["worker_rate"] else bound(e1.get("cpu_workers", {}))])
        load = r.get("load", [])
        if load:
            ok = [x for x in load if x["p99_ms"] <= TARGETS["api_p99"]]
            best = max(ok or load, key=lambda x: x["accepted_per_s"])
            met = best["accepted_per_s"] >= TARGETS["api_rate"] and best["p99_ms"] <= TARGETS["api_p99"]
            short = []
            if best["accepted_per_s"] < TARGETS["api_rate"]:
                short.append(pct_short(best["accepted_per_s"], TARGETS["api_rate"]) + " on rate")
            if best["p99_ms"] > TARGETS["api_p99"]:
                short.append(pct_short(best["p99_ms"], TARGETS["api_p99"], False) + " on p99")
            rows.append(["API ≥ 5,000 accepted orders/s with p99 ≤ 20 ms", s,
                         f"{fmt(best['accepted_per_s'], 0)}/s at p99 {best['p99_ms']:.1f} ms "
                         f"(c={best['connections']})" + ("" if ok else "; no level had p99 ≤ 20 ms"),
                         "met" if met else "**missed**", "; ".join(short) or "–",
                         "–" if met else bound(best.get("cpu", {}), ("sqs server (localstack)",))])
        e2e = r.get("e2e", [])
        if e2e:
            worst = max(e2e, key=lambda x: x["sqs_requests_per_order"])
            v = worst["sqs_requests_per_order"]
            n = worst["orders"]
            rows.append(["≤ 0.35 SQS requests per order in total", s,
                         f"{v:.3f} (worst run, {worst['workers']} worker(s): API "
                         f"{worst['api_sqs_requests'] / n:.3f} + workers "
                         f"{sum(worst['worker_sqs_requests']) / n:.3f})",
                         "met" if v <= TARGETS["sqs_per_order"] else "**missed**",
                         pct_short(v, TARGETS["sqs_per_order"], False),
                         "–" if v <= TARGETS["sqs_per_order"] else
                         "batches not full (ideal: 0.1 send + 0.1 receive + 0.1 delete = 0.3)"])
        fr = r.get("frugal")
        if fr:
            v = fr["worker_vmhwm_kb"][0]
            rows.append(["worker peak RSS ≤ 32 MiB with 1,000 orders in flight", s,
                         f"{mib(v)} (max in flight seen: {fmt(fr['max_in_flight_seen'][0])})",
                         "met" if v is not None and v <= MIB32_KB else "**missed**",
                         pct_short(v, MIB32_KB, False), "–"])
        if load:
            v = max((x["api_vmhwm_kb"] or 0) for x in load)
            rows.append(["API peak RSS ≤ 32 MiB under the load test", s, mib(v),
                         "met" if v <= MIB32_KB else "**missed**", pct_short(v, MIB32_KB, False), "–"])
    w(table(["target", "SQS server", "measured", "", "by how much", "what bounds it (CPU in % of one core)"], rows))
    w("")
    w("MiB = 1,048,576 bytes (the 32 MB targets are read as 32 MiB = 32,768 kB of VmHWM). "
      "\"What bounds it\" is read off the CPU use of each process during that phase "
      "(sampled from /proc/PID/stat every 0.5 s); a single-threaded process at ~100% of one core "
      "is a hard limit, a machine at ~200% means the 2 cores are the limit.\n")

    # ------------------------------------------------------------ sqs alone
    if any(r.get("sqs_ceiling") for r in res.values()):
        w("## The SQS server alone (for scale)\n")
        w("wrk -t2 -c16 sending SendMessageBatch (10 messages shaped like order-api's) straight to the "
          "server, 5 s per round, repeated until the rate stops growing by 10% (the JVM of ElasticMQ "
          "needs tens of seconds to compile its hot paths); no API, no PostgreSQL. This is what the "
          "server can take on this machine while sharing it with wrk: the ceiling for anything "
          "order-api publishes.\n")
        rows = []
        for s, r in res.items():
            c = r.get("sqs_ceiling")
            if not c or not c.get("rounds"):
                continue
            f = c["final"]
            rows.append([s, " → ".join(f"{x['messages_per_s']:,.0f}" for x in c["rounds"]),
                         f"**{f['messages_per_s']:,.0f}**", f"{f['rps']:,.0f}", f"{f['p50_ms']:.1f}",
                         f"{f['p99_ms']:.1f}", fmt(f["non200"]),
                         fmt(f["cpu"].get(f"sqs server ({s})"), 0), fmt(f["cpu"].get("wrk"), 0),
                         fmt(f["cpu"].get("machine (all processes)"), 0)])
        w(table(["server", "messages/s by round", "messages/s (last round)", "SendMessageBatch/s",
                 "p50 ms", "p99 ms", "non-200", "server CPU %", "wrk CPU %", "machine CPU %"], rows))
        w("")

    # ------------------------------------------------------------ (a)
    w("## (a) API under load (wrk -t2, 15 s per level, fresh API and queue per level)\n")
    for s, r in res.items():
        load = r.get("load", [])
        if not load:
            continue
        w(f"### {s}\n")
        w(table(["connections", "requests/s", "accepted (201)/s", "p50 ms", "p99 ms", "p99.9 ms",
                 "max ms", "non-201", "socket errors", "published to SQS /s",
                 "outbox backlog at end", "orders per group commit", "API VmHWM",
                 "API CPU s / 1,000 orders"],
                [[x["connections"], fmt(x["rps"], 0), fmt(x["accepted_per_s"], 0),
                  f"{x['p50_ms']:.2f}", f"{x['p99_ms']:.2f}", f"{x['p999_ms']:.2f}",
                  f"{x['max_ms']:.1f}", fmt(x["non201"]), fmt(x["socket_errors"]),
                  fmt(x["sqs_publish_per_s"], 0), fmt(x["outbox_backlog_end"]),
                  fmt(x["orders_created"] / x["group_commits"], 1) if x["group_commits"] else "–",
                  mib(x["api_vmhwm_kb"]),
                  cpu_s_per_1000(x["cpu"], "order-api", x["accepted_per_s"])] for x in load]))
        w("")
        cols = cpu_cols([x["cpu"] for x in load])
        w("CPU during each level (% of one core; the machine has 200%):\n")
        w(table(["connections"] + cols + ["biggest other processes"],
                [[x["connections"]] + [fmt(x["cpu"].get(c), 0) for c in cols] + [top_other(x["cpu"])]
                 for x in load]))
        w("")

    # ------------------------------------------------------------ (b)
    w("## (b) End to end: prefilled queue, W workers, 2 s payment delay\n")
    w("Each run: a fresh queue; all orders POSTed (wrk -t2 -c64, exactly N orders) with no worker "
      "running; wait until the outbox has sent them all; then start W workers and time until the "
      "last order is PROCESSED (throughput = orders / that time, which includes the first 2 s "
      "payment delay; \"steady\" = the middle 80% of the orders over the time they took; "
      "\"ceiling\" = Little's law, W × WORKER_MAX_IN_FLIGHT / 2 s: no run can beat it, whatever "
      "the SQS server and PostgreSQL do).\n")
    for s, r in res.items():
        e2e = r.get("e2e", [])
        if not e2e:
            continue
        w(f"### {s}\n")
        w(table(["workers", "orders", "POST /s", "outbox drained after", "elapsed", "throughput /s",
                 "steady /s", "ceiling /s", "max in flight (per worker)", "payments (distinct)",
                 "min processed−created", "min PAYMENT_STARTED→PROCESSED",
                 "worker CPU s / 1,000 orders", "checks"],
                [[e["workers"], fmt(e["orders"]), fmt(e["post_per_s"], 0),
                  f"{e['enqueue_wait_s']:.1f} s", f"{e['elapsed_s']} s" if e["elapsed_s"] else "–",
                  f"**{fmt(e['throughput_per_s'], 0)}**", fmt(e.get("steady_per_s"), 0),
                  fmt(e["workers"] * e["max_in_flight_setting"] / 2.0, 0),
                  ", ".join(fmt(x) for x in e["max_in_flight_seen"]),
                  f"{fmt(e['payments'])} ({fmt(e['payments_distinct'])})",
                  f"{e['min_processed_minus_created_s']} s",
                  f"{e['min_payment_started_to_processed_s']} s",
                  cpu_s_per_1000(e["cpu_workers"], "order-worker", e["throughput_per_s"]),
                  "all passed" if all(e["checks"].values()) else
                  "FAILED: " + ", ".join(k for k, v in e["checks"].items() if not v)]
                 for e in e2e]))
        w("")
        cols = cpu_cols([e["cpu_workers"] for e in e2e])
        w("CPU while the workers ran (% of one core):\n")
        w(table(["workers"] + cols + ["biggest other processes"],
                [[e["workers"]] + [fmt(e["cpu_workers"].get(c), 0) for c in cols]
                 + [top_other(e["cpu_workers"])] for e in e2e]))
        w("")
        cols = cpu_cols([e["cpu_post"] for e in e2e])
        w("CPU while the orders were POSTed and published (% of one core):\n")
        w(table(["workers"] + cols + ["biggest other processes"],
                [[e["workers"]] + [fmt(e["cpu_post"].get(c), 0) for c in cols]
                 + [top_other(e["cpu_post"])] for e in e2e]))
        w("")

    # ------------------------------------------------------------ (c)
    w("## (c) SQS requests per order (counted by the programs' own metrics)\n")
    rows = []
    for s, r in res.items():
        for e in r.get("e2e", []) + ([r["frugal"]] if r.get("frugal") else []):
            n = e["orders"]
            rows.append([s, e["label"], fmt(n), fmt(e["api_sqs_requests"]),
                         " + ".join(fmt(x) for x in e["worker_sqs_requests"]),
                         f"{e['api_sqs_requests'] / n:.3f}",
                         f"{sum(e['worker_sqs_requests']) / n:.3f}",
                         f"**{e['sqs_requests_per_order']:.3f}**",
                         f"{fmt(e['api_sqs_errors'])} / {fmt(sum(e['worker_sqs_errors']))}",
                         fmt(sum(e["worker_redelivered"]))])
    w(table(["server", "run", "orders", "API requests", "worker requests", "API per order",
             "workers per order", "total per order", "SQS errors API / workers",
             "redelivered"], rows))
    w("")
    w("The floor with full batches of 10 is 0.3 (SendMessageBatch, ReceiveMessage, "
      "DeleteMessageBatch); idle long polls (20 s wait) add a little per worker.\n")

    # ------------------------------------------------------------ (d)
    w("## (d) Peak RSS (VmHWM)\n")
    rows = []
    for s, r in res.items():
        load = r.get("load", [])
        if load:
            rows.append([s, "order-api after the load test (max over levels)", "–",
                         mib(max((x["api_vmhwm_kb"] or 0) for x in load))])
        for e in r.get("e2e", []):
            rows.append([s, f"order-worker, {e['workers']} worker(s), {fmt(e['orders'])} orders",
                         ", ".join(fmt(x) for x in e["max_in_flight_seen"]),
                         ", ".join(mib(x) for x in e["worker_vmhwm_kb"])])
            rows.append([s, f"order-api in that run (POST + publish)", "–", mib(e["api_vmhwm_kb"])])
        fr = r.get("frugal")
        if fr:
            rows.append([s, f"**order-worker, WORKER_MAX_IN_FLIGHT=1000, {fmt(fr['orders'])} orders**",
                         fmt(fr["max_in_flight_seen"][0]), f"**{mib(fr['worker_vmhwm_kb'][0])}**"])
    w(table(["server", "process", "max in flight seen", "VmHWM"], rows))
    w("")
    for s, r in res.items():
        fr = r.get("frugal")
        if fr:
            w(f"Memory run on {s}: {fmt(fr['orders'])} orders in {fr['elapsed_s']} s "
              f"({fmt(fr['throughput_per_s'], 0)}/s), {fr['sqs_requests_per_order']:.3f} SQS "
              f"requests per order, checks: "
              + ("all passed" if all(fr["checks"].values()) else
                 "FAILED " + ", ".join(k for k, v in fr["checks"].items() if not v)) + ".\n")

    # ------------------------------------------------------------ profile
    for s, r in res.items():
        p = r.get("profile")
        if not p:
            continue
        if "error" in p:
            w(f"## Profile of order-api ({s})\n\nperf failed: {p['error']}\n")
            continue
        cpu = p.get("cpu", {})
        wr = p.get("wrk", {})
        w(f"## Profile of order-api under load ({s})\n")
        w(f"`perf record -F {p['frequency']} --call-graph dwarf` of the API for {p['seconds']} s while "
          f"wrk ran at {p['connections']} connections: a separate run after the measured levels "
          f"({fmt(wr.get('rps'), 0)} requests/s; the API used {fmt(cpu.get('order-api'), 0)}% of one core, "
          f"PostgreSQL {fmt(cpu.get('postgresql (bench database)'), 0)}%, "
          f"the SQS server {fmt(cpu.get(f'sqs server ({s})'), 0)}%, "
          f"the machine {fmt(cpu.get('machine (all processes)'), 0)}% of 200%). "
          "libmicrohttpd has no symbols here (its frames show as addresses).\n")
        w("API CPU samples by shared object (self):\n")
        w("```\n" + "\n".join(p["by_dso"][:12]) + "\n```\n")
        w("Inclusive time (children included) of user-space functions, ≥ 2%:\n")
        w("```\n" + "\n".join(p["inclusive"][:30]) + "\n```\n")
        w("Self time by symbol, ≥ 1%:\n")
        w("```\n" + "\n".join(p["self"][:20]) + "\n```\n")

    # ------------------------------------------------------------ oddities
    w("## Problems and warnings seen\n")
    any_p = False
    for s, r in res.items():
        for p in r.get("problems", []):
            any_p = True
            msgs = "; ".join(f"`{m}` ×{n}" for m, n in sorted(p.get("messages", {}).items(),
                                                              key=lambda x: -x[1])[:4])
            w(f"- {s}: {p['process']} exit {p['rc']}, {p['log_lines']} warn/error log lines"
              + (f": {msgs}" if msgs else ""))
        for e in r.get("e2e", []) + ([r["frugal"]] if r.get("frugal") else []):
            if not all(e["checks"].values()):
                any_p = True
                w(f"- {s}: {e['label']}: failed checks {[k for k, v in e['checks'].items() if not v]}")
            if e.get("timed_out"):
                any_p = True
                w(f"- {s}: {e['label']}: timed out with {e['processed']}/{e['orders']} PROCESSED")
    if not any_p:
        w("- none: every process exited 0 with no warn/error log line, every check passed.")
    w("")
    # The focused worker runs (bench/worker_bench.py) are written by hand
    # under their own heading at the end: a regenerated report keeps them.
    out = Path(a.out)
    kept = ""
    if out.exists():
        old = out.read_text()
        i = old.find("\n" + WORKER_SECTION)
        if i >= 0:
            kept = old[i:]
    out.write_text("\n".join(L) + "\n" + kept)


if __name__ == "__main__":
    main()
