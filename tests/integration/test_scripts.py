"""scripts/up.sh and scripts/services.sh as a user runs them (issue 14): real
processes, each test with its own state directory (ORDER_LOCAL_DIR) and its
own free ports, so nothing here touches the services of the test command.

What is checked: an up.sh whose output pipe closed early still stops every
process it started (services included) and frees every port; a Ctrl-C
(SIGINT to its process group) of an idle up.sh ends everything within a
bound; a second up.sh is refused with a clear message; the state file of a
killed up.sh is cleaned up by the next one; services.sh status reports the
custom ports of what runs; the ready banner's commands work with
authentication on.
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

from conftest import BIN, ROOT

# These test the scripts, not the programs: once, with the release build.
pytestmark = pytest.mark.skipif(os.environ.get("ORDER_SANITIZED") == "1",
                                reason="script behaviour; run with the release build only")

UP = str(ROOT / "scripts" / "up.sh")
SERVICES = str(ROOT / "scripts" / "services.sh")
START_TIMEOUT = 240  # services from scratch on a loaded 2-core machine
STOP_BOUND = 10  # generous: an idle stop takes about a second


def port_in_use(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port_run(n, taken=()):
    """A port p with p .. p+n-1 all free, below the kernel's ephemeral range
    (32768-60999), so no outgoing connection takes one of them before up.sh
    binds it (as with METRICS_PORT and the workers' next two)."""
    for _ in range(500):
        p = random.randrange(20000, 32000 - n)
        run = range(p, p + n)
        if not any(q in taken or port_in_use(q) for q in run):
            return p
    raise RuntimeError("no run of free ports")


def started_by(local):
    """Live processes whose environment names this state directory: everything
    up.sh started, the services included, inherits ORDER_LOCAL_DIR."""
    needle = f"ORDER_LOCAL_DIR={local}".encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env and state != "Z":
            pids.append(int(d))
    return pids


class Instance:
    """The settings of one up.sh: its state directory and ports."""

    def __init__(self, base):
        self.local = str(base / "state")
        taken = set()
        self.metrics = free_port_run(3)
        taken.update(range(self.metrics, self.metrics + 3))
        self.port, self.pg, self.sqs = (self.other_port(taken) for _ in range(3))
        self.ports = [self.port, self.metrics, self.metrics + 1, self.metrics + 2, self.pg, self.sqs]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "AUTH_"))}
        self.env.update(
            {
                "ORDER_LOCAL_DIR": self.local,
                "ORDER_BIN": str(BIN),
                "PORT": str(self.port),
                "METRICS_PORT": str(self.metrics),
                "PGPORT_LOCAL": str(self.pg),
                "SQS_PORT_LOCAL": str(self.sqs),
                "PAYMENT_DELAY_MS": "300",
            }
        )
        self.procs = []

    @staticmethod
    def other_port(taken):
        p = free_port_run(1, taken)
        taken.add(p)
        return p

    def diagnostics(self):
        """up.sh's own messages (up.log) and the end of the API's log."""
        out = []
        for name in ("up.log", "logs/api.log", "logs/worker-1.log", "logs/worker-2.log"):
            try:
                with open(os.path.join(self.local, name), errors="replace") as f:
                    out.append(f"--- {name}:\n" + "".join(f.readlines()[-30:]))
            except FileNotFoundError:
                out.append(f"--- {name}: missing")
        return "\n".join(out)

    def start(self, args, **kw):
        """Starts a command in a session of its own (so a SIGINT to its group is
        what Ctrl-C in a terminal does), SIGINT at its default disposition even
        when the test run itself ignores it."""
        p = subprocess.Popen(
            args, env=self.env, cwd=ROOT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)
        self.procs.append(p)
        return p

    def up(self, out_path):
        self.out_path = out_path
        with open(out_path, "wb") as out:
            return self.start([UP], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self):
        return self.out_path.read_text(errors="replace")

    def state(self):
        try:
            with open(os.path.join(self.local, "up.state")) as f:
                return dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
        except FileNotFoundError:
            return {}

    def wait_ready(self, proc, up_pid=None):
        """Until the up.sh of pid up_pid (default: proc) has recorded that all it
        starts runs (READY=1, after its banner) and the API answers ready."""
        up_pid = up_pid or proc.pid
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"up.sh exited {proc.returncode} before it was ready\n{self.diagnostics()}")
            st = self.state()
            if st.get("UP", "").startswith(f"{up_pid}:") and st.get("READY") == "1":
                try:
                    if requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"up.sh not ready within {START_TIMEOUT} s\n{self.diagnostics()}")

    def interrupt_and_measure(self, proc):
        """Ctrl-C: SIGINT to the process group. Returns the seconds until up.sh
        has returned and nothing it started is left."""
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        deadline = t0 + STOP_BOUND
        while time.monotonic() < deadline:
            if proc.poll() is not None and not started_by(self.local):
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError(
            f"{STOP_BOUND} s after SIGINT: up.sh {'still runs' if proc.poll() is None else 'returned'}, "
            f"left: {started_by(self.local)}\n{self.diagnostics()}")

    def assert_nothing_left(self):
        assert started_by(self.local) == []
        busy = [p for p in self.ports if port_in_use(p)]
        assert busy == [], f"ports still in use: {busy}"
        assert not os.path.exists(os.path.join(self.local, "up.state"))

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for pid in started_by(self.local):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run([SERVICES, "stop"], env=self.env, capture_output=True, timeout=60)


@pytest.fixture
def inst():
    base = ROOT / ".local" / f"t-scripts-{uuid.uuid4().hex[:8]}"
    base.mkdir(parents=True)
    i = Instance(base)
    i.base = base
    yield i
    i.cleanup()
    shutil.rmtree(base, ignore_errors=True)


def test_closed_output_pipe_then_ctrl_c_leaves_no_process_or_port(inst):
    """`up.sh | head -1`: the pipe closes at the first line, up.sh goes on; its
    Ctrl-C stop must not die of the closed pipe half way (issue 14: PostgreSQL
    and LocalStack were left running)."""
    p = inst.start(["bash", "-c", f"{UP} 2>&1 | head -n 1"], stdout=subprocess.PIPE,
                   stdin=subprocess.DEVNULL)
    first = p.stdout.readline()
    assert first, "up.sh printed nothing"
    deadline = time.time() + 30
    while not inst.state() and time.time() < deadline:
        time.sleep(0.05)
    up_pid = int(inst.state()["UP"].split(":")[0])  # the up.sh in the pipeline
    inst.wait_ready(p, up_pid)
    took = inst.interrupt_and_measure(p)
    print(f"stop with a closed output pipe took {took:.2f} s")
    inst.assert_nothing_left()
    run_log = open(os.path.join(inst.local, "up.log")).read()
    assert "stopped in" in run_log and "services: stopping PostgreSQL" in run_log, run_log


def test_ctrl_c_of_an_idle_up_stops_everything_quickly(inst):
    p = inst.up(inst.base / "up.out")
    inst.wait_ready(p)
    took = inst.interrupt_and_measure(p)
    print(f"idle stop after SIGINT took {took:.2f} s")
    assert p.returncode == 130
    inst.assert_nothing_left()
    assert "up: stopped in" in inst.output()


def test_ready_banner_commands_work_second_instance_is_refused_status_reports_ports(inst):
    p = inst.up(inst.base / "up.out")
    inst.wait_ready(p)
    deadline = time.time() + 10
    while "press Ctrl-C" not in inst.output() and time.time() < deadline:
        time.sleep(0.1)
    out = inst.output()

    # the banner: a token from scripts/token.sh, then curls that send it
    block = out.split("later):\n\n", 1)[1].split("\n\n", 1)[0]
    assert block.lstrip().startswith("TOKEN=$(") and "token.sh --customer c-123" in block
    assert '-H "Authorization: Bearer $TOKEN"' in block
    assert "/events" in block and "/logs/" in out and "LOG_FORMAT=text" in out
    r = subprocess.run(["bash", "-c", block], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    order_id = r.stdout.splitlines()[0]
    assert re.fullmatch(r"[0-9a-f-]{36}", order_id), r.stdout
    assert '"step":"RECEIVED"' in r.stdout and f'"order_id":"{order_id}"' in r.stdout, r.stdout

    # a second up.sh on the same state: refused, says how to stop the first
    second = inst.start([UP], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        stdin=subprocess.DEVNULL)
    so, se = second.communicate(timeout=60)
    msg = se.decode()
    assert second.returncode == 1, msg
    assert f"already running (pid {p.pid})" in msg and f"kill {p.pid}" in msg, msg
    assert not re.search(r"\bbind|port 0|in use|up: ready", msg, re.I), msg
    assert so == b"" and len(msg.splitlines()) == 2, msg
    assert requests.get(f"http://127.0.0.1:{inst.port}/healthz", timeout=2).status_code == 200

    # services.sh status: what runs, on the ports it was given
    st = subprocess.run([SERVICES, "status"], env={**inst.env, "PGPORT_LOCAL": "", "SQS_PORT_LOCAL": ""},
                        capture_output=True, text=True, timeout=30)
    assert st.returncode == 0, st.stdout + st.stderr
    assert f"accepting connections on 127.0.0.1:{inst.pg}" in st.stdout, st.stdout
    assert f"on http://127.0.0.1:{inst.sqs}," in st.stdout, st.stdout
    assert f"up.sh: running (pid {p.pid}): order-api on 127.0.0.1:{inst.port}" in st.stdout, st.stdout

    took = inst.interrupt_and_measure(p)
    print(f"stop took {took:.2f} s")
    inst.assert_nothing_left()


def test_state_of_a_killed_up_is_cleaned_up_not_trusted(inst):
    """SIGKILL leaves up.state, the programs and the services behind; the next
    up.sh stops the leftovers, starts afresh, and its stop ends the services
    the killed run started."""
    first = inst.up(inst.base / "up1.out")
    inst.wait_ready(first)
    state = open(os.path.join(inst.local, "up.state")).read()
    left = [int(x.split(":")[0]) for x in re.search(r"^PIDS=(.*)$", state, re.M).group(1).split()]
    assert len(left) == 4, state  # the API, two workers, the log follower
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert any(os.path.exists(f"/proc/{pid}") for pid in left)

    st = subprocess.run([SERVICES, "status"], env=inst.env, capture_output=True, text=True, timeout=30)
    assert "up.sh: not running" in st.stdout, st.stdout

    second = inst.up(inst.base / "up2.out")
    inst.wait_ready(second)
    out = inst.output()
    assert f"a previous scripts/up.sh (pid {first.pid}) ended without stopping" in out, out
    for pid in left:
        try:
            with open(f"/proc/{pid}/stat") as f:
                assert f.read().rsplit(")", 1)[1].split()[0] == "Z", f"pid {pid} of the killed run is alive"
        except FileNotFoundError:
            pass
    assert f"UP={second.pid}:" in open(os.path.join(inst.local, "up.state")).read()
    took = inst.interrupt_and_measure(second)
    print(f"stop of the second run took {took:.2f} s")
    inst.assert_nothing_left()
