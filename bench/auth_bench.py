#!/usr/bin/env python3
"""bench/auth_bench.py - what bearer-token authentication costs order-api.

The same load level as bench/run.sh's (POST /orders under wrk -t2 for
--duration s at --conns connections, a fresh API, database and queue each
time) with authentication off and on, alternating --rounds times so drift on
the machine falls on both. With auth on, wrk sends one RS256 access token
(admin scope, minted by scripts/token.sh from a key made for the run), the
way a client reuses its token until it expires: the API checks its signature
once and then finds it in the verified-token cache. Rate limiting is off in
both modes (RATE_LIMIT_RPS=0): it is not what is measured.

Against the PostgreSQL and SQS server already running (scripts/services.sh,
settings from .local/env). Prints and writes (--out-dir) JSON: accepted
orders/s and p99 of every round, the median of each mode and
on/off = median(on) / median(off).

Usage: bench/auth_bench.py [--rounds 3] [--duration 10] [--conns 64]
"""
import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench as B
from worker_bench import local_env

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "https://order-service.local"
AUDIENCE = "order-api"


class AuthBench(B.Bench):
    mode = "off"

    def setup_keys(self):
        self.key_dir = self.out_dir / "auth"
        token_sh = [str(ROOT / "scripts" / "token.sh"), "--dir", str(self.key_dir)]
        subprocess.run(token_sh + ["--init"], check=True, stdout=subprocess.DEVNULL)
        self.token = subprocess.run(token_sh + ["--customer", "bench-auth", "--admin", "--ttl",
                                                "7200"], check=True, capture_output=True,
                                    text=True).stdout.strip()

    def env(self, queue_url, extra=None):
        env = super().env(queue_url, extra)
        env["RATE_LIMIT_RPS"] = "0"
        if self.mode == "jwt":
            env.update(AUTH_MODE="jwt", AUTH_ISSUER=ISSUER, AUTH_AUDIENCE=AUDIENCE,
                       AUTH_JWKS_FILE=str(self.key_dir / "jwks.json"))
        return env

    def wrk(self, url, conns, duration, label, extra_env=None, latency=True):
        extra = dict(extra_env or {})
        if self.mode == "jwt":
            extra["AUTHORIZATION"] = "Bearer " + self.token  # read by bench/post.lua
        return super().wrk(url, conns, duration, label, extra, latency)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--bin-dir", default=str(ROOT / "build"))
    ap.add_argument("--out-dir", default=None)
    a = ap.parse_args()
    le = local_env()
    run_id = time.strftime("%Y%m%d%H%M%S")
    out_dir = Path(a.out_dir or ROOT / ".local" / "bench" / f"auth-{run_id}")
    out_dir.mkdir(parents=True, exist_ok=True)
    pid_file = ROOT / ".local" / "localstack.pid"
    ns = argparse.Namespace(
        sqs_name="localstack", endpoint=le["AWS_ENDPOINT_URL_SQS"],
        sqs_pid=pid_file.read_text().split()[0] if pid_file.exists() else "",
        database_url=le["DATABASE_URL"], bin_dir=a.bin_dir, out_dir=str(out_dir),
        run_id=f"a{run_id}", orders=0, keep_db=False, duration=a.duration)
    signal.signal(signal.SIGTERM, B._on_signal)
    signal.signal(signal.SIGINT, B._on_signal)
    r = AuthBench(ns)
    r.setup_keys()
    r.sampler.start()
    r.create_db()
    rows = {"off": [], "jwt": []}

    def rounds():
        for i in range(a.rounds):
            for mode in ("off", "jwt"):
                r.mode = mode
                row = r.load_level(a.conns)
                B.log(f"round {i + 1} auth {mode}: {row['accepted_per_s']}/s accepted,"
                      f" p99 {row['p99_ms']} ms, non-201 {row['non201']}")
                rows[mode].append({k: row[k] for k in ("accepted_per_s", "p50_ms", "p99_ms",
                                                       "non201", "requests")})
        med = {m: statistics.median(x["accepted_per_s"] for x in rows[m]) for m in rows}
        out = {"conns": a.conns, "duration_s": a.duration, "rounds": rows,
               "median_accepted_per_s": med, "on_over_off": round(med["jwt"] / med["off"], 3)}
        (out_dir / "auth.json").write_text(json.dumps(out, indent=1))
        print(json.dumps(out, indent=1))
        # every POST of both modes must have been answered 201
        return 0 if all(x["non201"] == 0 for m in rows for x in rows[m]) else 1

    return B.run_closing(r, rounds)


if __name__ == "__main__":
    sys.exit(main())
