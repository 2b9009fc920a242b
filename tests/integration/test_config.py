"""Configuration errors, end to end with the real programs (issues 10 and 14).

Every variable in the README's configuration table is given bad values, and
each program that reads it must exit 2 with exactly one line on stderr naming
it (and nothing on stdout). The README's table, both programs' --help and the
C sources must name the same set of variables. Nothing here needs PostgreSQL
or SQS: every error happens before a program connects, and a value wrongly
accepted shows as a program that keeps running (the test then fails).
"""
import os
import re
import subprocess

import pytest

from conftest import BIN, ROOT, free_port

PROGRAMS = {"api": ["order-api"], "worker": ["order-worker"], "both": ["order-api", "order-worker"]}


@pytest.fixture(scope="session")
def migrated():
    """Overrides conftest's autouse fixture: these tests need no database."""


def readme_table():
    """{variable: (default as written, program column)} from README.md's Configuration table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \| (both|api|worker) \| .+ \|$", line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} twice in the README"
            rows[m.group(1)] = (m.group(2).replace("`", ""), m.group(3))
        else:
            assert not line.startswith("| `"), f"README row not understood: {line}"
    return rows


README = readme_table()

BASE = {
    "DATABASE_URL": "postgresql://orders@127.0.0.1:1/orders",
    "SQS_QUEUE_URL": "http://127.0.0.1:1/000000000000/orders",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "BIND_ADDRESS": "127.0.0.1",
    "MIGRATIONS_DIR": str(ROOT / "migrations"),
    "OPENAPI_PATH": str(ROOT / "api" / "openapi.yaml"),
    "AUTH_MODE": "jwt",
    "AUTH_ISSUER": "https://order-service.local",
    "AUTH_AUDIENCE": "order-api",
    "METRICS_PORT": "0",
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=67",
}

# Bad values beyond the two every variable gets (a control character, and for
# a numeric default a non-number and an out-of-range number).
SPECIFIC = {
    "DATABASE_URL": ["postgresql:///orders", "host=x bogus", "postgresql://u@h:99999/db",
                     b"postgresql://u@h/db\xff"],
    "SQS_QUEUE_URL": [b"http://127.0.0.1:4566/\xff", "sqs/orders", "http://:4566/q",
                      "http://h:0/q", "http://h/q q"],
    "AWS_REGION": ["US East 1"],
    "AWS_DEFAULT_REGION": ["us_east_1"],
    "AWS_ENDPOINT_URL_SQS": ["ftp://x", "http://127.0.0.1:4566/path", b"http://\xff"],
    "AWS_ENDPOINT_URL": ["localhost:4566", "https://user:pw@h"],
    "AWS_ACCESS_KEY_ID": ["AKID WITH SPACE"],
    "AWS_SECRET_ACCESS_KEY": ["x" * 200],
    "AWS_SESSION_TOKEN": ["t" * 5000],
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": ["v2/credentials"],
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": ["ftp://169.254.170.23/creds"],
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": ["tok\ten"],
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": ["/nonexistent/token"],
    "LOG_LEVEL": ["loud"],
    "LOG_FORMAT": ["xml"],
    "BIND_ADDRESS": ["localhost", "::1", "10.0.0.256"],
    "METRICS_PORT": ["65536"],
    "PORT": ["0", "65536"],
    "MIGRATIONS_DIR": ["/nonexistent", str(ROOT / "README.md")],
    "OPENAPI_PATH": ["/nonexistent/openapi.yaml", str(ROOT / "api")],
    "AUTH_MODE": ["maybe"],
    "AUTH_ISSUER": ["http://idp.example.com", "idp.example.com"],
    "AUTH_AUDIENCE": ["order-api,,x", "order api"],
    "AUTH_ALGORITHMS": ["HS256", "RS256,none", "rs256"],
    "AUTH_LEEWAY_S": ["601"],
    "AUTH_SCOPE_PREFIX": ["orders /"],
    "AUTH_CUSTOMER_CLAIM": ["my claim"],
    "AUTH_JWKS_URL": ["http://idp.example.com/jwks", "file:///etc/jwks.json"],
    "AUTH_JWKS_FILE": ["/nonexistent/jwks.json"],
    "AUTH_JWKS_REFRESH_S": ["59"],
    "AUTH_JWKS_MIN_REFRESH_S": ["0"],
    "AUTH_JWKS_TIMEOUT_MS": ["99"],
    "RATE_LIMIT_BURST": ["0"],
    "EVENT_BUS_NAME": ["my/bus", "orders bus", "b" * 1601],
    "EVENT_SOURCE": ["aws.orders", "s" * 257],
    "AWS_ENDPOINT_URL_EVENTS": ["ftp://x", "http://127.0.0.1:4566/path", "localhost:4566"],
    "WORKER_MAX_IN_FLIGHT": ["9"],
    "WORKER_WAIT_TIME_S": ["21"],
    "WORKER_VISIBILITY_TIMEOUT_S": ["4"],
    "PAYMENT_PROVIDER": ["stripe"],
    "PAYMENT_DECLINE_RATE": ["1.5", "0.5.5", "abc", "1e-1", ".", "nan"],
    "PAYMENT_ERROR_RATE": ["2", "0,5"],
    "PAYMENT_URL": ["http://provider.example.com/pay", "ftp://127.0.0.1/pay", "pay"],
    "PAYMENT_AUTH_HEADER_FILE": ["/nonexistent/auth"],
    "PAYMENT_AUTH_HEADER": ["Bearer a\tb", "x" * 9000],
    "PAYMENT_TIMEOUT_MS": ["99", "120001"],
    "PAYMENT_MAX_ATTEMPTS": ["0", "21"],
}


def bad_values(var):
    default = README[var][0]
    values = ["bad\x01value"]
    if re.fullmatch(r"\d+", default):
        values += ["12abc", "-1", "99999999999"]
    return values + SPECIFIC.get(var, [])


def run(prog, env, args=(), timeout=10):
    """(returncode, stdout, stderr); returncode None when it was still running at timeout."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full.update(env)
    full = {k: v for k, v in full.items() if v is not None}
    p = subprocess.Popen([str(BIN / prog), *args], env=full, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err


def assert_config_error(prog, env, var, args=(), starts=True):
    rc, out, err = run(prog, env, args)
    shown = f"{prog} {args} {var}: rc={rc} stdout={out[:300]!r} stderr={err[:300]!r}"
    assert rc == 2, shown
    assert out == b"", shown  # never a log line
    lines = err.decode("ascii").splitlines()  # printable ASCII, whatever the value held
    assert len(lines) == 1, shown
    prefix = f"{prog}: configuration error: "
    assert lines[0].startswith(prefix), shown
    msg = lines[0][len(prefix):]
    assert msg.startswith(var + " ") if starts else var in msg, shown
    return msg


def base(prog):
    env = dict(BASE)
    env["PORT"] = str(free_port())  # if a bad value slipped through, never a shared port
    return env


SWEEP = [
    pytest.param(prog, var, value, id=f"{prog}-{var}-{i}")
    for var, (_, who) in README.items()
    for prog in PROGRAMS[who]
    for i, value in enumerate(bad_values(var))
]


@pytest.mark.parametrize("prog,var,value", SWEEP)
def test_every_readme_variable_with_a_bad_value_exits_2_naming_it(prog, var, value):
    env = base(prog)
    env[var] = value
    msg = assert_config_error(prog, env, var)
    if isinstance(value, str) and len(value) > 3:
        assert value not in msg  # values may be secrets: never echoed


def test_the_base_configuration_passes_the_loader():
    """The sweep means something only if nothing but the bad value is wrong."""
    for prog in ("order-api", "order-worker"):
        rc, out, err = run(prog, base(prog), timeout=2)
        assert b"configuration error" not in err, err
        assert rc is None or rc != 2, (prog, rc, err)


@pytest.mark.parametrize("prog", ["order-api", "order-worker"])
def test_fault5_invalid_utf8_queue_url_exits_2_naming_it(prog):
    """Issue 10, fault 5: SQS_QUEUE_URL=$'http://127.0.0.1:4566/\\xff' crashed the
    worker in its first receive and made every POST answer 500."""
    env = base(prog)
    env["SQS_QUEUE_URL"] = b"http://127.0.0.1:4566/\xff"
    msg = assert_config_error(prog, env, "SQS_QUEUE_URL")
    assert "printable ASCII" in msg


@pytest.mark.parametrize("prog", ["order-api", "order-worker"])
def test_required_variables_missing(prog):
    for var in ("DATABASE_URL", "SQS_QUEUE_URL"):
        for value in (None, ""):
            env = base(prog)
            env[var] = value
            msg = assert_config_error(prog, env, var)
            assert "required" in msg
    env = base(prog)
    env["AWS_REGION"] = None
    assert_config_error(prog, env, "AWS_REGION")


@pytest.mark.parametrize("prog", ["order-api", "order-worker"])
def test_no_credential_source_exits_2_naming_the_chain(prog):
    """Issue 14: this was exit 1 with a JSON log line on stdout."""
    env = base(prog)
    env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = None
    msg = assert_config_error(prog, env, "AWS_ACCESS_KEY_ID", starts=False)
    assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in msg
    # half a key pair
    env = base(prog)
    env["AWS_ACCESS_KEY_ID"] = None
    assert_config_error(prog, env, "AWS_ACCESS_KEY_ID", starts=False)
    # the container endpoint is a source, and its URI is checked without a fetch
    env = base(prog)
    env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = None
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://203.0.113.9/creds"
    assert_config_error(prog, env, "AWS_CONTAINER_CREDENTIALS_FULL_URI")


def test_rules_between_api_variables():
    cases = [
        ({"AUTH_MODE": "off"}, "AUTH_ISSUER"),  # off with an issuer set
        ({"AUTH_ISSUER": None}, "AUTH_ISSUER"),  # jwt without an issuer
        ({"AUTH_ISSUER": ""}, "AUTH_ISSUER"),
        ({"AUTH_AUDIENCE": None}, "AUTH_AUDIENCE"),  # jwt without an audience
        ({"AUTH_JWKS_REFRESH_S": "60", "AUTH_JWKS_MIN_REFRESH_S": "61"}, "AUTH_JWKS_MIN_REFRESH_S"),
        ({"METRICS_PORT": "18080", "PORT": "18080"}, "METRICS_PORT"),
    ]
    for over, var in cases:
        env = base("order-api")
        env.update(over)
        assert_config_error("order-api", env, var, starts=False)
    # off without an issuer is a valid configuration
    env = base("order-api")
    env.update({"AUTH_MODE": "off", "AUTH_ISSUER": None, "AUTH_AUDIENCE": None})
    rc, _, err = run("order-api", env, timeout=2)
    assert b"configuration error" not in err and rc != 2, err


def test_subcommands_check_what_they_read():
    env = base("order-api")
    env["DATABASE_URL"] = "host=x bogus"
    assert_config_error("order-api", env, "DATABASE_URL", args=("migrate",))
    env = base("order-api")
    env["MIGRATIONS_DIR"] = "/nonexistent"
    assert_config_error("order-api", env, "MIGRATIONS_DIR", args=("migrate",))
    env = base("order-api")
    env["PORT"] = "http"
    assert_config_error("order-api", env, "PORT", args=("healthcheck",))
    # migrate does not need the queue, the credentials or the auth settings
    env = base("order-api")
    for var in ("SQS_QUEUE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AUTH_ISSUER"):
        env[var] = None
    rc, out, err = run("order-api", env, args=("migrate",))
    assert rc == 1 and b"configuration error" not in err, (rc, out, err)  # no database at :1


def help_table(prog):
    r = subprocess.run([str(BIN / prog), "--help"], capture_output=True, text=True, timeout=10,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert r.returncode == 0 and r.stdout.startswith("usage: "), r
    rows = re.findall(r"^  ([A-Z][A-Z0-9_]*) \[(.*?)\]", r.stdout, re.M)
    names = [n for n, _ in rows]
    assert len(names) == len(set(names)), f"{prog} --help lists a variable twice"
    return dict(rows)


def code_variables():
    """Every variable the C sources read: table entries and getenv-like calls."""
    found = set()
    for d in ("api", "worker", "common"):
        for path in (ROOT / d).glob("*.c"):
            src = path.read_text()
            found |= set(re.findall(r'\.name\s*=\s*"([A-Z][A-Z0-9_]*)"', src))
            found |= set(re.findall(r'\b\w*env\w*\(\s*"([A-Z][A-Z0-9_]*)"', src))
            found |= set(re.findall(r'\butil_data_path\(\s*"([A-Z][A-Z0-9_]*)"', src))
    return found


def test_help_readme_and_code_name_the_same_variables():
    api, worker = help_table("order-api"), help_table("order-worker")
    assert set(api) | set(worker) == set(README), (
        f"only in --help: {sorted((set(api) | set(worker)) - set(README))}; "
        f"only in README: {sorted(set(README) - set(api) - set(worker))}")
    for var, (default, who) in README.items():
        expect = {"api": (True, False), "worker": (False, True), "both": (True, True)}[who]
        assert (var in api, var in worker) == expect, f"{var}: README says {who}"
        for table in (api, worker):
            if var in table:
                assert table[var] == default, f"{var}: --help {table[var]!r}, README {default!r}"
    code = code_variables()
    assert code == set(README), (f"read by the code, not in README: {sorted(code - set(README))}; "
                                 f"in README, not in the code: {sorted(set(README) - code)}")


def test_help_lists_the_sqs_client_and_credential_variables():
    """Issue 14: --help used to omit these."""
    for prog in ("order-api", "order-worker"):
        names = help_table(prog)
        for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
                    "SQS_MAX_ATTEMPTS", "SQS_CONNECT_TIMEOUT_MS", "SQS_REQUEST_TIMEOUT_MS",
                    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "LOG_LEVEL", "LOG_FORMAT", "BIND_ADDRESS"):
            assert var in names, f"{prog} --help lacks {var}"


def test_payment_auth_header_and_its_file_are_exclusive():
    env = base("order-worker")
    env["PAYMENT_AUTH_HEADER"] = "Bearer abc"
    env["PAYMENT_AUTH_HEADER_FILE"] = str(ROOT / "README.md")
    msg = assert_config_error("order-worker", env, "PAYMENT_AUTH_HEADER")
    assert "abc" not in msg


def test_http_payment_provider_needs_a_url():
    env = base("order-worker")
    env["PAYMENT_PROVIDER"] = "http"
    env.pop("PAYMENT_URL", None)
    assert_config_error("order-worker", env, "PAYMENT_URL")


@pytest.mark.parametrize("content", [b"", b"Bearer a\r\nX-Injected: 1\n", b"\xff" * 10,
                                     b"x" * 9000])
def test_payment_auth_header_file_content_is_checked(tmp_path, content):
    f = tmp_path / "auth"
    f.write_bytes(content)
    env = base("order-worker")
    env["PAYMENT_AUTH_HEADER_FILE"] = str(f)
    msg = assert_config_error("order-worker", env, "PAYMENT_AUTH_HEADER_FILE")
    assert "Bearer" not in msg and "Injected" not in msg
