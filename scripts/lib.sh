# shellcheck shell=bash
# Shell helpers shared by scripts/ and bench/ (sourced, never run): messages,
# process and port handling, bounded stops, and one AWS JSON-protocol call for
# the local SQS and EventBridge emulators.
#
# The decision that shapes it: a message can never stop a script. Every message
# goes to stderr and a failed write is ignored, so a closed pipe (`| head`), a
# dead terminal or `nohup` cannot cut a cleanup short; scripts that clean up
# also ignore SIGPIPE while they do. Every wait is bounded and ends in SIGKILL.
#
# Before sourcing, set LIB_TAG (the prefix of messages, e.g. "services") and,
# for a clock in each message, LIB_LOG_CLOCK=1.

LIB_TAG="${LIB_TAG:-${0##*/}}"
LIB_LOG_CLOCK="${LIB_LOG_CLOCK:-0}"

# ------------------------------------------------------------------ messages
log() {
  if ((LIB_LOG_CLOCK)); then
    printf '%s [%(%H:%M:%S)T]: %s\n' "$LIB_TAG" -1 "$*" >&2 2>/dev/null || true
  else
    printf '%s: %s\n' "$LIB_TAG" "$*" >&2 2>/dev/null || true
  fi
}
die() {
  log "ERROR: $*"
  exit 1
}
# The comment block at the top of the running script, up to `set -euo`.
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[-1]}"; }

tail_log() { # file [lines]
  local f="$1" n="${2:-40}"
  {
    if [[ -s "$f" ]]; then
      printf -- '----- last %s lines of %s -----\n' "$n" "$f"
      tail -n "$n" "$f"
      printf -- '-----\n'
    else
      printf -- '(%s is empty or missing)\n' "$f"
    fi
  } >&2 2>/dev/null || true
}

need_cmd() { # command [hint]
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found${2:+; $2}"
}

# ------------------------------------------------------------------ processes
# The fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid,
# [2] process group, ... [19] start time.
proc_stat_fields() { # pid -> fills the array PROC_STAT
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  read -r -a PROC_STAT <<<"${stat##*) }"
}

# Alive and not a zombie (a child that exited but was not reaped yet).
pid_alive() {
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$1" 2>/dev/null || return 1
  proc_stat_fields "$1" || return 1
  [[ "${PROC_STAT[0]}" != Z ]]
}

# Start time of a process (clock ticks since boot): with the pid, it names one
# process, so a recorded pid that another program reused is not mistaken for ours.
pid_start_time() {
  proc_stat_fields "$1" || return 1
  printf '%s\n' "${PROC_STAT[19]}"
}

# Leads its own process group (started with setsid).
pid_leads_group() {
  proc_stat_fields "$1" || return 1
  [[ "${PROC_STAT[2]}" == "$1" ]]
}

pid_cmdline_has() { # pid text: the process's command line contains text
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# Prints the pid recorded on the first line of a pid file when that process is
# alive and its command line contains the given text.
pid_from_file() { # file text
  local pid
  [[ -f "$1" ]] || return 1
  pid="$(head -n 1 "$1" 2>/dev/null || true)"
  pid_alive "$pid" || return 1
  pid_cmdline_has "$pid" "$2" || return 1
  printf '%s\n' "$pid"
}

now_ms() { local t="${EPOCHREALTIME//[!0-9]/}"; printf '%s\n' "$((t / 1000))"; }

# Waits until every pid is gone; fails when one outlives the timeout.
wait_gone() { # timeout_ms pid...
  local deadline p
  deadline=$(($(now_ms) + $1))
  shift
  for p in "$@"; do
    while pid_alive "$p"; do
      (($(now_ms) < deadline)) || return 1
      sleep 0.05
    done
  done
}

# Stops processes: SIGTERM, a bounded wait, then SIGKILL and a short wait. A pid
# that leads its own process group (started with setsid) is signalled as a
# group, so the children it started go with it. Returns once all are gone.
stop_pids() { # timeout_ms name pid...
  local timeout="$1" name="$2" p
  shift 2
  local -a targets=()
  for p in "$@"; do
    pid_alive "$p" || continue
    if pid_leads_group "$p"; then targets+=("-$p"); else targets+=("$p"); fi
  done
  ((${#targets[@]})) || return 0
  kill -TERM -- "${targets[@]}" 2>/dev/null || true
  if wait_gone "$timeout" "$@"; then
    # whatever is left in the groups once their leaders are gone
    for p in "${targets[@]}"; do
      [[ "$p" == -* ]] && kill -KILL -- "$p" 2>/dev/null
    done
    return 0
  fi
  log "$name did not stop within ${timeout} ms; killing it"
  kill -KILL -- "${targets[@]}" 2>/dev/null || true
  wait_gone 3000 "$@" || log "$name is still there after SIGKILL (pids $*)"
}

# ------------------------------------------------------------------ ports
port_in_use() { # host port: something accepts connections there
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_port_free() { # host port timeout_ms
  local deadline=$((${EPOCHREALTIME/./} / 1000 + $3))
  while port_in_use "$1" "$2"; do
    ((${EPOCHREALTIME/./} / 1000 < deadline)) || return 1
    sleep 0.05
  done
}

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }

# ------------------------------------------------------------------ AWS JSON protocol
# One call to a local AWS emulator (LocalStack, ElasticMQ) with the JSON protocol.
# They do not check signatures, but get the headers a real client sends.
# Prints the response body; fails on a non-2xx answer.
aws_json_call() { # endpoint region service target json-version body
  local out code
  out="$(curl -sS --max-time 15 -X POST "$1/" \
    -H "X-Amz-Target: $4" \
    -H "Content-Type: application/x-amz-json-$5" \
    -H "X-Amz-Date: $(date -u +%Y%m%dT%H%M%SZ)" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/$(date -u +%Y%m%d)/$2/$3/aws4_request, SignedHeaders=host;x-amz-date, Signature=0" \
    --data-binary "$6" -w $'\n%{http_code}')" || return 1
  code="${out##*$'\n'}"
  printf '%s\n' "${out%$'\n'*}"
  [[ "$code" == 2* ]]
}

sqs_json_call() { # endpoint region Action body
  aws_json_call "$1" "$2" sqs "AmazonSQS.$3" 1.0 "$4"
}

events_json_call() { # endpoint region Action body
  aws_json_call "$1" "$2" events "AWSEvents.$3" 1.1 "$4"
}
