# Shared helpers of hack/cluster-up.sh, cluster-down.sh, node-up.sh, node-down.sh (sourced).
# Expects: LOG_TAG (prefix of log lines), CLUSTER_DIR; TIMEOUT for wait_for; PKI for sign.
# shellcheck shell=bash

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- processes -------------------------------------------------------------------------------------
# start <name> <binary> <args...>: run in its own session, log to logs/<name>.log, pid to pids/.
start() {
  local name=$1
  shift
  mkdir -p "$CLUSTER_DIR/logs" "$CLUSTER_DIR/pids"
  # 9>&-: the component must not inherit (and so hold forever) the up.lock descriptor.
  setsid "$@" >"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$CLUSTER_DIR/pids/$name.pid"
}

# fail_with <name> <message>: die showing the tail of that component's log.
fail_with() {
  log "ERROR: $2"
  log "last lines of $CLUSTER_DIR/logs/$1.log:"
  tail -n 25 "$CLUSTER_DIR/logs/$1.log" >&2 || true
  log "the processes are left running for inspection; stop them with: CLUSTER_DIR=$CLUSTER_DIR hack/cluster-down.sh"
  exit 1
}

# wait_for <name> <what> <command...>: retry until it succeeds, the process dies, or the timeout.
wait_for() {
  local name=$1 what=$2 deadline=$((SECONDS + TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(<"$CLUSTER_DIR/pids/$name.pid")" 2>/dev/null || fail_with "$name" "$name exited while waiting for $what"
    ((SECONDS < deadline)) || fail_with "$name" "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.5
  done
}

# ours <pid> <dir>...: the process is alive and runs a binary from one of the dirs, so a
# recycled PID is never signalled.
ours() {
  local pid=$1 cmd d
  shift
  [[ -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  for d in "$@"; do [[ $cmd == "$d/"* ]] && return 0; done
  return 1
}

# stop_recorded <dirs (colon-separated)> <name>...: SIGTERM the recorded processes that are ours,
# wait up to 15s, then SIGKILL; remove their pid files.
stop_recorded() {
  local IFS_SAVE=$IFS dirs name f pid pids=() deadline
  IFS=: read -ra dirs <<<"$1"
  IFS=$IFS_SAVE
  shift
  for name in "$@"; do
    f=$CLUSTER_DIR/pids/$name.pid
    [[ -f $f ]] || continue
    pid=$(<"$f")
    if ours "$pid" "${dirs[@]}"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$f"
  done
  stop_pids "${pids[@]}" -- "${dirs[@]}"
}

# stop_pids <pid>... -- <dir>...: wait for already signalled PIDs, SIGKILL stragglers after 15s.
stop_pids() {
  local pids=() dirs pid deadline=$((SECONDS + 15))
  while [[ $# -gt 0 && $1 != -- ]]; do pids+=("$1"); shift; done
  shift
  dirs=("$@")
  for pid in "${pids[@]}"; do
    while ours "$pid" "${dirs[@]}" && ((SECONDS < deadline)); do sleep 0.2; done
    if ours "$pid" "${dirs[@]}"; then
      log "pid $pid did not exit after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# alive_recorded: true when any process recorded in $CLUSTER_DIR/pids is still alive.
alive_recorded() {
  local p
  for p in "$CLUSTER_DIR"/pids/*.pid; do
    [[ -f $p ]] && kill -0 "$(<"$p")" 2>/dev/null && return 0
  done
  return 1
}

# state_dir_active <dir>: a cluster-up holds that state dir's lock, or its processes still run.
state_dir_active() {
  [[ -d $1 ]] || return 1
  if [[ -f $1/up.lock ]] && ! flock -n "$1/up.lock" true; then return 0; fi
  CLUSTER_DIR=$1 alive_recorded
}

# --- certificates ----------------------------------------------------------------------------------
ossl() { openssl "$@" >/dev/null 2>&1 || die "openssl $1 failed (args: $*)"; }

# sign <name> <subject> [<subjectAltName>]: $PKI/<name>.{crt,key} signed by $PKI/ca.
# With a SAN the certificate serves too (serverAuth); without one it is a client certificate.
sign() {
  local name=$1 subj=$2 san=${3:-}
  local ext=$PKI/$name.ext
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $san ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  ossl req -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj"
  ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -out "$PKI/$name.crt" -days 3650 -extfile "$ext"
  rm -f "$PKI/$name.csr" "$ext"
}

# kubeconfig <file> <cert name>: a kubeconfig for https://127.0.0.1:$API_PORT with that cert.
kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ray-operator-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: ray-operator-local
  context:
    cluster: ray-operator-local
    user: $2
current-context: ray-operator-local
EOF
}
