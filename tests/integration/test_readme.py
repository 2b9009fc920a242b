"""The README's curl examples are real (issue 14): each one, from the quick
start to the end of the HTTP API section, is run as written against a
running system (order-api and order-worker on free ports, authentication on,
the README's 2 s payment), and its answer must have the shape of the output
the README shows: the status line and the headers shown, the same JSON keys
(every key, unless the README elides some with "…"), the same values of the
enumerated fields (status, code, step, field), and /metrics lines as printed,
HELP and TYPE included.

Only what cannot be the same is replaced: the host ports, the README's order
ids (by the ids of the orders this run made), the Idempotency-Key (made
unique per run, so a rerun is not a replay), "…same body…" (the body of the
POST example) and $TOKEN (a token of customer c-123 from tokens.py, the keys
the API trusts)."""
import json
import re
import subprocess
import uuid

import requests

import tokens
from conftest import ROOT, VALID_ORDER, Api, Worker, free_port

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
EXACT_FIELDS = {"status", "code", "step", "field"}


def readme_examples():
    """(command, expected output or None) for every fenced block holding curl
    between '## Quick start' and '## Guarantees'. Two styles: a ```sh block
    whose output is the block right after it, or '$ command' lines each
    followed by their output."""
    text = (ROOT / "README.md").read_text()
    text = text[text.index("## Quick start"):text.index("## Guarantees")]
    blocks = []  # (lang, body, follows_previous_block_directly)
    lines = text.splitlines()
    i, last_close = 0, -2
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        blocks.append((m.group(1), "\n".join(lines[i + 1:j]), last_close == i - 1))
        last_close = j
        i = j + 1
    examples = []
    for n, (lang, body, _) in enumerate(blocks):
        if "curl" not in body:
            continue
        if body.lstrip().startswith("$ "):
            cmd, out = None, []
            for line in body.splitlines():
                if line.startswith("$ "):
                    if cmd:
                        examples.append((cmd, "\n".join(out)))
                    cmd, out = line[2:], []
                else:
                    out.append(line)
            examples.append((cmd, "\n".join(out)))
        elif lang == "sh":
            nxt = blocks[n + 1] if n + 1 < len(blocks) else None
            out = nxt[1] if nxt and nxt[2] and nxt[0] != "sh" else None
            examples.append((body, out))
    return examples


def split_http(text):
    """'HTTP/1.1 201 Created\\nName: value\\n\\nbody' -> (status, {name: value}, body)."""
    lines = text.strip("\n").splitlines()
    status = int(lines[0].split()[1])
    headers, k = {}, 1
    while k < len(lines) and lines[k].strip() and not lines[k].startswith("{"):
        name, _, value = lines[k].partition(":")
        headers[name.strip().lower()] = value.strip()
        k += 1
    return status, headers, "\n".join(lines[k:]).strip()


def parse_json(text):
    """The README's JSON, with "…" marking elided members: (value, elided)."""
    joined = "".join(line.strip() for line in text.splitlines())
    elided = "…" in joined
    joined = re.sub(r",\s*…", "", joined)
    return json.loads(joined), elided


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def shape_diff(exp, act, path="$", elided=False):
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return [f"{path}: an object in the README, got {json_type(act)}"]
        errs = []
        missing, extra = exp.keys() - act.keys(), act.keys() - exp.keys()
        if missing:
            errs.append(f"{path}: shown in the README but missing: {sorted(missing)}")
        if extra and not elided:
            errs.append(f"{path}: returned but not shown in the README: {sorted(extra)}")
        for k in exp.keys() & act.keys():
            if k in EXACT_FIELDS and isinstance(exp[k], str) and exp[k] != act[k]:
                errs.append(f"{path}.{k}: {exp[k]!r} in the README, got {act[k]!r}")
            errs += shape_diff(exp[k], act[k], f"{path}.{k}", elided)
        return errs
    if isinstance(exp, list):
        if not isinstance(act, list):
            return [f"{path}: an array in the README, got {json_type(act)}"]
        if len(exp) != len(act) and not elided:
            return [f"{path}: {len(exp)} elements in the README, got {len(act)}"]
        errs = []
        for k, (e, a) in enumerate(zip(exp, act)):
            errs += shape_diff(e, a, f"{path}[{k}]", elided)
        return errs
    if json_type(exp) != json_type(act):
        return [f"{path}: {json_type(exp)} in the README, got {json_type(act)}"]
    return []


def metrics_shape(text):
    """Exposition lines with each sample's value replaced."""
    return [line if line.startswith("#") else re.sub(r" [^ ]+$", " N", line)
            for line in text.strip().splitlines()]


class System:
    def __init__(self, api, worker_metrics):
        self.api = api
        self.worker_metrics = worker_metrics
        self.ids = {}  # README order id -> this run's
        self.main_id = None  # the order of the POST example
        self.run = uuid.uuid4().hex[:8]
        self.post_body = None

    def new_order(self):
        r = requests.post(self.api.url + "/orders", json=VALID_ORDER, timeout=10,
                          headers=tokens.bearer(self.token))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def prepare(self, cmd):
        m = re.search(r"-d '(\{[^']*\})'", cmd)
        if m and "Idempotency-Key" in cmd and self.post_body is None:
            self.post_body = m.group(1)
        cmd = cmd.replace("'…same body…'", f"'{self.post_body}'")
        cmd = cmd.replace("http://127.0.0.1:8080", self.api.url)
        cmd = cmd.replace("127.0.0.1:9100", self.api.metrics_url.split("/")[2])
        cmd = cmd.replace("127.0.0.1:9101", f"127.0.0.1:{self.worker_metrics}")
        cmd = cmd.replace("demo-order-42", f"demo-order-42-{self.run}")
        for readme_id in re.findall(UUID, cmd):
            if readme_id not in self.ids:  # an order the README made out of view (a PENDING one)
                self.ids[readme_id] = self.new_order()
            cmd = cmd.replace(readme_id, self.ids[readme_id])
        # $TOKEN is the test's; the README's own TOKEN=$(scripts/token.sh ...) line is not run
        return "\n".join(line for line in cmd.splitlines() if not line.startswith("TOKEN="))

    def learn_ids(self, expected, actual):
        for e, a in zip(re.findall(UUID, expected), re.findall(UUID, actual)):
            if e not in self.ids and a not in self.ids.values():
                self.ids[e] = a
                self.main_id = self.main_id or a

    def with_ids(self, text):
        for e, a in self.ids.items():
            text = text.replace(e, a)
        return text


def check(system, cmd, expected):
    if expected and "PROCESSED" in expected and system.main_id:
        system.api.wait_status(system.main_id, "PROCESSED")  # "about 2 s later"
    script = system.prepare(cmd)
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin", "TOKEN": system.token})
    assert r.returncode == 0, f"{cmd}\nexit {r.returncode}: {r.stderr}"
    out = r.stdout.replace("\r\n", "\n")
    if expected is None:  # shown without its output: a JSON answer, not an error
        body = json.loads(out.strip().splitlines()[-1])
        assert "error" not in body, f"{cmd}\n{out}"
        return
    where = f"README example:\n{cmd}\nanswer:\n{out}"
    if expected.startswith("HTTP/"):
        exp_status, exp_headers, exp_body = split_http(expected)
        status, headers, body = split_http(out)
        system.learn_ids(expected, out)
        assert status == exp_status, where
        for name, value in exp_headers.items():
            assert name in headers, f"header {name} missing; {where}"
            assert headers[name] == system.with_ids(value), f"header {name}; {where}"
        expected, out = exp_body, body
        if not expected:  # the README shows the status and headers only
            return
    if expected.lstrip().startswith("{"):
        exp, elided = parse_json(expected)
        act = json.loads(out)
        system.learn_ids(expected, out)
        errs = shape_diff(exp, act, elided=elided)
        assert not errs, "\n".join(errs) + "\n" + where
    else:
        assert metrics_shape(out) == metrics_shape(expected), where


def test_every_readme_curl_example_answers_as_shown(queue):
    examples = readme_examples()
    # the quick start's, and each route of the HTTP API section
    assert len(examples) >= 12, examples
    api = Api(queue)
    worker_metrics = free_port()
    worker = Worker(queue, {"PAYMENT_DELAY_MS": "2000", "METRICS_PORT": str(worker_metrics)})
    system = System(api, worker_metrics)
    # what scripts/token.sh --customer c-123 mints: sub and customer c-123, read and write
    system.token = tokens.KEYS.mint(sub="c-123", claims={"customer": "c-123"})
    try:
        # an older PROCESSED order of c-123, so the listing example has a next page
        older = system.new_order()
        api.wait_status(older, "PROCESSED")
        for cmd, expected in examples:
            check(system, cmd, expected)
    finally:
        assert worker.stop() == 0
        assert api.stop() == 0
