"""Checks compose.yaml without a Docker daemon.

1. Validates it against the Compose Specification's JSON schema, the one
   Docker Compose v2 itself validates with (compose-spec/compose-go, fetched
   through the Go module proxy at a pinned version).
2. Checks what the README promises: `docker compose up --build --scale
   worker=3` works (the worker has no container_name and no host ports), the
   migration runs once before the API, every dependency names a service,
   every published port binds 127.0.0.1 only, the API gets the local JWT
   issuer with its JWKS mounted read-only, LocalStack runs SQS and EventBridge.
   (scripts/compose-test.sh runs the file for real; this is the fast check.)

Usage: python scripts/check_compose.py [compose.yaml]
"""
import json
import os
import subprocess
import sys

import jsonschema
import yaml

COMPOSE_GO = "github.com/compose-spec/compose-go/v2@v2.16.2"


def schema():
    env = dict(os.environ, GOFLAGS="-mod=mod")
    out = subprocess.run(["go", "mod", "download", "-json", COMPOSE_GO], env=env, check=True,
                         capture_output=True, text=True, timeout=300, cwd="/")
    path = os.path.join(json.loads(out.stdout)["Dir"], "schema", "compose-spec.json")
    with open(path) as f:
        return json.load(f)


def validator():
    spec = schema()
    # the spec declares its own draft (2020-12 today): validate with that one
    return jsonschema.validators.validator_for(spec)(spec)


def loopback_ports(services):
    """Every published port binds 127.0.0.1 (short "IP:HOST:CONTAINER" or long syntax)."""
    out = []
    for name, svc in services.items():
        for port in svc.get("ports", []):
            ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            if ip != "127.0.0.1":
                out.append(f"{name} publishes {port!r} beyond 127.0.0.1")
    return out


def api_auth(api):
    """The API is configured for the local issuer and reads its JWKS from a read-only mount."""
    env = api.get("environment", {})
    out = [f"api must set {k}={v}" for k, v in (("AUTH_ISSUER", "https://order-service.local"),
                                                   ("AUTH_AUDIENCE", "order-api"))
           if env.get(k) != v]
    jwks = env.get("AUTH_JWKS_FILE")
    mounts = [str(v) for v in api.get("volumes", [])]
    if not jwks or not any(m.endswith(f":{jwks}:ro") for m in mounts):
        out.append("api must mount the JWKS read-only at AUTH_JWKS_FILE")
    return out


def main(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    problems = [f"schema: {'/'.join(map(str, e.path))}: {e.message}"
                for e in validator().iter_errors(doc)]
    services = doc.get("services", {})
    for name in ("postgres", "localstack", "migrate", "api", "worker"):
        if name not in services:
            problems.append(f"service {name} is missing")
    worker = services.get("worker", {})
    if "container_name" in worker or worker.get("ports"):
        problems.append("worker must have no container_name and no host ports to scale")
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in services:
                problems.append(f"{name} depends on unknown service {dep}")
    api_deps = services.get("api", {}).get("depends_on", {})
    if not isinstance(api_deps, dict) or \
            api_deps.get("migrate", {}).get("condition") != "service_completed_successfully":
        problems.append("api must wait for migrate to complete successfully")
    if services.get("migrate", {}).get("command") not in (["migrate"], "migrate"):
        problems.append("migrate must run `order-api migrate`")
    problems += loopback_ports(services) + api_auth(services.get("api", {}))
    ls_services = str(services.get("localstack", {}).get("environment", {}).get("SERVICES", ""))
    if not {"sqs", "events"} <= set(ls_services.split(",")):
        problems.append(f"localstack SERVICES must include sqs and events, not {ls_services!r}")
    for p in problems:
        print(f"check-compose: {p}", file=sys.stderr)
    print(f"check-compose: {len(services)} services, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "compose.yaml"))
