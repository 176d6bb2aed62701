#!/usr/bin/env bash
# scripts/s3-down.sh [DIR]
#
# Stops the Ceph daemons scripts/s3-up.sh started in DIR, and only those: a pid is read from
# DIR/run/<name>.pid and signalled only if that process runs with DIR/ceph.conf.
# Order: radosgw, then the OSD while the monitor is still up, then the monitor (~2 s each).
# Stopping all at once is slower: the OSD waits for the vanished monitor, and radosgw without
# its OSD waits rgw_exit_timeout_secs (120 s) for its in-flight operations.
# SIGTERM, then SIGKILL after S3_STOP_GRACE seconds (default 20).
# Idempotent: nothing running is not an error. S3_WIPE=1 also deletes DIR (only if s3-up.sh
# made it); otherwise DIR keeps the logs (and a bluestore cluster's data).
set -euo pipefail

D=$(realpath -m "${1:-/tmp/tessera-s3}")
CONF=$D/ceph.conf
GRACE=${S3_STOP_GRACE:-20}
log() { echo "[s3-down] $*" >&2; }

declare -A CMDLINE=([client.rgw]="radosgw -c $CONF -n client.rgw " [osd.0]="ceph-osd -c $CONF -i 0 "
  [mon.a]="ceph-mon -c $CONF -i a ")
# The daemon's pid: from its pid file, else (a daemon that died or hung before writing it) the
# process whose command line is exactly the one s3-up.sh ran for this DIR.
find_pid() {
  local pid proc cmdline
  pid=$(cat "$D/run/$1.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && cmdline=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) &&
    [[ $cmdline == *"-c $CONF "* ]] && { echo "$pid"; return; }
  for proc in /proc/[0-9]*; do
    cmdline=$({ tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null) || continue
    [[ $cmdline == "${CMDLINE[$1]}" ]] && { echo "${proc#/proc/}"; return; }
  done
  return 0
}

stopped=0
for name in client.rgw osd.0 mon.a; do
  pidfile=$D/run/$name.pid
  pid=$(find_pid "$name")
  if [[ -n $pid ]]; then
    t0=$(date +%s%N)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((GRACE * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) still running ${GRACE}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    log "$name (pid $pid) stopped in $((($(date +%s%N) - t0) / 1000000)) ms"
    stopped=$((stopped + 1))
  elif [[ -f $pidfile ]]; then
    log "$name: stale pid file (its process is not running with $CONF)"
  fi
  # ceph-osd's fast shutdown leaves its pid file and admin socket behind
  rm -f "$pidfile" "$D/run/$name.asok"
done
((stopped)) || log "nothing was running in $D"
if [[ ${S3_WIPE:-} == 1 && -f $D/.tessera-s3 ]]; then
  rm -rf "$D"
  log "deleted $D"
fi
