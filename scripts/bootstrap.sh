#!/usr/bin/env bash
# Installs what this repository needs locally, in two sets: what running needs
# (scripts/up.sh: build the programs, PostgreSQL, LocalStack) and, with
# --with-tests, what testing and benchmarking add (the test command):
#   1. missing Debian/Ubuntu packages (apt-get; `apt-get update` only when
#      something actually has to be installed),
#   2. a git-ignored Python virtual environment at .venv/ holding
#      scripts/requirements.txt (LocalStack for SQS and EventBridge) and, with
#      --with-tests, scripts/requirements-test.txt (pytest, psycopg,
#      Schemathesis), reinstalled only when those files or the interpreter change.
#
# Idempotent, and fast (well under 2 s) when everything is already in place.
# Runs as root, or through sudo when it has to install packages as another user.
#
# Usage: scripts/bootstrap.sh [options]
#   --with-tests         also install the test and benchmark tools (clang,
#                        clang-format, valgrind, shellcheck, wrk) and
#                        scripts/requirements-test.txt
#   --with-containers    also install podman buildah debootstrap runc and the
#                        Docker CLI (client only, for scripts/compose-test.sh):
#                        Debian's docker-cli package where it exists (13+);
#                        on bookworm, whose docker.io holds the daemon too,
#                        only its `docker` binary, unpacked into .local/tools/bin
#                        (no daemon installed or started)
#   --with-lint          also install shellcheck
#   --packages "A B"     also install these Debian packages
#   --no-apt             skip the Debian package step
#   --no-venv            skip the Python virtual environment step
#   --check              change nothing; exit 1 if anything is missing or stale
#   -h, --help           show this help
# Environment:
#   PYTHON               interpreter for the venv (default /usr/bin/python3,
#                        else python3 on PATH; needs >= 3.10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/scripts/requirements.txt"
REQUIREMENTS_TEST="$ROOT/scripts/requirements-test.txt"
STAMP="$VENV/.requirements.stamp"
LIB_TAG=bootstrap
# shellcheck source=SCRIPTDIR/lib.sh
source "$ROOT/scripts/lib.sh"

# What running needs. "a|b" means: a, or b where a does not exist (other releases).
# libcmocka-dev: scripts/build.sh builds the unit tests along with the programs.
# openssl: scripts/token.sh signs the local tokens with it.
RUNTIME_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libcurl4-openssl-dev libssl-dev libjansson-dev libpq-dev libcmocka-dev libmicrohttpd-dev
  postgresql
  curl jq ca-certificates git openssl
  python3 python3-venv
  util-linux procps
)
# What the test command and the benchmark add.
TEST_PACKAGES=(
  clang "libclang-rt-14-dev|libclang-rt-dev" clang-format valgrind
  shellcheck wrk
)
# runc: the runtime the container scripts configure (scripts/container-env.sh)
CONTAINER_PACKAGES=(podman buildah debootstrap runc)
TOOLS_BIN="$ROOT/.local/tools/bin"
LINT_PACKAGES=(shellcheck)

do_apt=1 do_venv=1 check_only=0 with_tests=0 with_containers=0
packages=("${RUNTIME_PACKAGES[@]}")
while (($#)); do
  case "$1" in
    --with-tests)
      with_tests=1
      packages+=("${TEST_PACKAGES[@]}") ;;
    --with-containers)
      with_containers=1
      packages+=("${CONTAINER_PACKAGES[@]}") ;;
    --with-lint) packages+=("${LINT_PACKAGES[@]}") ;;
    --packages)
      [[ $# -ge 2 ]] || die "--packages needs an argument"
      read -r -a extra <<<"$2"
      packages+=("${extra[@]}")
      shift ;;
    --packages=*)
      read -r -a extra <<<"${1#--packages=}"
      packages+=("${extra[@]}") ;;
    --no-apt) do_apt=0 ;;
    --no-venv) do_venv=0 ;;
    --check) check_only=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

# Serialise concurrent runs (e.g. the "up" and "test" commands started together).
# (apt may start daemons, e.g. a system PostgreSQL: as_root closes the lock's fd.)
mkdir -p "$ROOT/.local"
exec {lock_fd}>"$ROOT/.local/.bootstrap.lock"
if ! flock -w 1200 "$lock_fd"; then
  die "timed out waiting for another bootstrap run (lock $ROOT/.local/.bootstrap.lock)"
fi

missing_total=0

# ---------------------------------------------------------------- Debian packages
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@" {lock_fd}>&-
  elif command -v sudo >/dev/null 2>&1; then
    sudo -- "$@"
  else
    die "not root and sudo is not available; cannot run: $*"
  fi
}

has_candidate() {
  local cand
  cand="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  [[ -n "$cand" && "$cand" != "(none)" ]]
}

apt_step() {
  local -a names=() missing=()
  local spec alt
  local -A installed=()
  # Flatten alternatives so that a single dpkg-query call checks everything.
  for spec in "${packages[@]}"; do
    IFS='|' read -r -a alts <<<"$spec"
    names+=("${alts[@]}")
  done
  while read -r name status; do
    [[ "$status" == installed ]] && installed[$name]=1
  done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${names[@]}" 2>/dev/null || true)

  for spec in "${packages[@]}"; do
    IFS='|' read -r -a alts <<<"$spec"
    local ok=0
    for alt in "${alts[@]}"; do
      [[ -n "${installed[$alt]:-}" ]] && { ok=1; break; }
    done
    ((ok)) || missing+=("$spec")
  done

  ((${#missing[@]})) || return 0
  if ((check_only)); then
    log "missing Debian packages: ${missing[*]}"
    missing_total=$((missing_total + ${#missing[@]}))
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: ${missing[*]}"

  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq || die "apt-get update failed"
  local -a to_install=() unavailable=()
  for spec in "${missing[@]}"; do
    IFS='|' read -r -a alts <<<"$spec"
    local picked=""
    for alt in "${alts[@]}"; do
      if has_candidate "$alt"; then picked="$alt"; break; fi
    done
    if [[ -n "$picked" ]]; then to_install+=("$picked"); else unavailable+=("$spec"); fi
  done
  if ((${#unavailable[@]})); then
    log "WARNING: not available from the configured apt sources, skipped: ${unavailable[*]}"
  fi
  if ((${#to_install[@]})); then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${to_install[@]}" || die "apt-get install failed for: ${to_install[*]}"
  fi
  # Installing "postgresql" may create and start a system cluster on port 5432.
  # It does no harm: scripts/services.sh runs its own cluster under .local/ on
  # another port, using only the binaries in /usr/lib/postgresql/<version>/bin.
}

# ---------------------------------------------------------------- Docker CLI
# The client only: scripts/compose-test.sh talks to podman's Docker API with
# it. Debian 13+ packages it alone as docker-cli; bookworm only inside
# docker.io, whose postinst would install and start dockerd and containerd,
# so there the `docker` binary is taken out of the downloaded package.
docker_cli_step() {
  command -v docker >/dev/null 2>&1 && return 0
  [[ -x "$TOOLS_BIN/docker" ]] && return 0
  if ((check_only)); then
    log "missing the Docker CLI (docker on PATH or $TOOLS_BIN/docker)"
    missing_total=$((missing_total + 1))
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install the Docker CLI manually"
  if ! has_candidate docker-cli && ! has_candidate docker.io; then
    as_root apt-get update -qq || die "apt-get update failed"
  fi
  if has_candidate docker-cli; then
    log "installing Debian package docker-cli"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-cli ||
      die "apt-get install docker-cli failed"
    return 0
  fi
  has_candidate docker.io || die "neither docker-cli nor docker.io is available from apt"
  log "unpacking the docker client of Debian's docker.io into $TOOLS_BIN (no daemon)"
  local tmp rc=0
  tmp="$(mktemp -d)" || die "mktemp failed"
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root docker.io >/dev/null &&
    dpkg-deb -x docker.io_*.deb unpacked && mkdir -p "$TOOLS_BIN" &&
    install -m 0755 unpacked/usr/bin/docker "$TOOLS_BIN/docker") || rc=1
  rm -rf "$tmp"
  ((rc == 0)) || die "could not unpack the docker client from docker.io"
}

# ---------------------------------------------------------------- Python venv
pick_python() {
  local py
  for py in "${PYTHON:-}" /usr/bin/python3 python3; do
    [[ -n "$py" ]] || continue
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

# The stamp holds one line per installed set ("runtime <hash>", "tests <hash>");
# a set's hash covers its files (tests include the runtime file) and the
# interpreter, so a run of either kind reinstalls only what changed.
set_hash() { # files... -> hash of their content and of the interpreter
  cat "$@" <(printf '\npython=%s %s\n' "$py" "$py_version") | sha256sum | cut -d' ' -f1
}

venv_step() {
  local f
  local -a files=("$REQUIREMENTS")
  if ((with_tests)); then files+=("$REQUIREMENTS_TEST"); fi
  for f in "${files[@]}"; do
    [[ -f "$f" ]] || die "missing $f"
  done
  local py py_version want_runtime want_tests="" have_runtime="" have_tests=""
  py="$(pick_python)" || die "no usable Python >= 3.10 with the venv module (Debian: apt-get install python3-venv)"
  py_version="$("$py" -c 'import sys; print(sys.version.split()[0])')"
  want_runtime="$(set_hash "$REQUIREMENTS")"
  if ((with_tests)); then want_tests="$(set_hash "${files[@]}")"; fi
  if [[ -f "$STAMP" ]]; then
    have_runtime="$(awk '$1 == "runtime" {print $2}' "$STAMP")"
    have_tests="$(awk '$1 == "tests" {print $2}' "$STAMP")"
  fi

  local venv_ok=0
  if [[ -x "$VENV/bin/python" ]] &&
    [[ "$("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" == "$py_version" ]]; then
    venv_ok=1
  fi
  if ((venv_ok)) && [[ "$want_runtime" == "$have_runtime" ]] &&
    { ((!with_tests)) || [[ "$want_tests" == "$have_tests" ]]; }; then
    return 0
  fi
  if ((check_only)); then
    log "virtual environment $VENV is missing or out of date"
    missing_total=$((missing_total + 1))
    return 0
  fi

  if ((!venv_ok)); then
    log "creating virtual environment $VENV with $py ($py_version)"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || die "python -m venv failed (Debian: apt-get install python3-venv)"
  fi
  rm -f "$STAMP"
  local req="$REQUIREMENTS"
  if ((with_tests)); then req="$REQUIREMENTS_TEST"; fi # it includes requirements.txt
  log "installing $req into $VENV"
  local start=$SECONDS
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$VENV/bin/python" -m pip install -q -r "$req" ||
    die "pip install -r $req failed"
  # Fail here, not later in services.sh, if LocalStack's SQS or EventBridge
  # provider cannot load (EventBridge imports moto).
  local imports='import localstack.services.sqs.provider, localstack.services.events.provider, boto3, requests'
  if ((with_tests)); then imports+=', psycopg, pytest, schemathesis'; fi
  OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$ROOT/.local/localstack" \
    "$VENV/bin/python" -W ignore -c "$imports" ||
    die "the virtual environment does not import cleanly"
  printf 'runtime %s\n' "$want_runtime" >"$STAMP"
  if ((with_tests)); then printf 'tests %s\n' "$want_tests" >>"$STAMP"; fi
  log "virtual environment ready ($((SECONDS - start)) s)"
}

((do_apt)) && apt_step
((do_apt && with_containers)) && docker_cli_step
((do_venv)) && venv_step

if ((check_only)) && ((missing_total > 0)); then
  exit 1
fi
exit 0
