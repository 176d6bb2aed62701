#!/usr/bin/env bash
# scripts/s3-up.sh [DIR] [PORT]
#
# Starts a throw-away one-node Ceph cluster (one monitor, one OSD, one RADOS Gateway; Debian 12
# packages, Ceph 16 "pacific") serving S3 on http://127.0.0.1:PORT, for the S3 object driver's
# tests (test/store/objects.test.ts) and benchmarks. Everything binds to 127.0.0.1. No systemd:
# the daemons are started directly and fork into the background. Stop with scripts/s3-down.sh DIR.
#
#   env_lines=$(bash scripts/s3-up.sh /tmp/tessera-s3 7480) && eval "$env_lines"
#
# (Under `set -e`, `eval "$(bash scripts/s3-up.sh ...)"` does NOT fail when the script does:
# eval's status is that of the empty string it ran. Assign first, as above.)
# stdout carries only `export` lines: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL,
# AWS_REGION, AWS_EC2_METADATA_DISABLED, AWS_REQUEST_CHECKSUM_CALCULATION,
# AWS_RESPONSE_CHECKSUM_VALIDATION, S3_BUCKET and TESSERA_TEST_S3=s3://$S3_BUCKET/. Progress goes
# to stderr with elapsed times.
#
# Measured on a 2-core Debian 12 VM (shared, loaded): apt-get install 69 s, once (~70 MB);
# start 3 s (6-7 s under load); scripts/s3-down.sh 6 s; RSS 115 MB idle (mon 32, OSD 45,
# radosgw 36), the memstore OSD then grows with the data and keeps its peak (2.3 GB after ~1.5 GB of
# benchmark writes): use S3_OBJECTSTORE=bluestore for long benchmarks.
#
# Idempotent: if DIR's three daemons are alive and S3 answers, nothing starts and the exports
# are printed again. A half-alive cluster is stopped first. Otherwise DIR (if made by this
# script, or empty) is wiped and a new cluster is made, except that a bluestore cluster is
# restarted with its data.
#
# Knobs (environment, all optional):
#   S3_BUCKET        bucket to create (default tessera-test; an existing one is kept).
#   S3_OBJECTSTORE   memstore (default): objects live in the OSD's RAM, every start is empty; the
#                    OSD's RSS grows with what is stored and keeps its peak.
#                    bluestore: objects in a sparse file DIR/osd/block; data survives down/up.
#   S3_MEM_BYTES     memstore capacity (default 4 GiB; RAM is used only for what is stored). When
#                    the OSD is ~95% full, writes BLOCK rather than fail: size it above the test data.
#   S3_MON_PORT      monitor port (default PORT+1), so that two clusters differ by PORT alone.
#   S3_NO_INSTALL=1  never run apt-get: fail if a package is missing.
#
# Pitfalls met on the way (each one cost a failed start; keep them in mind before "simplifying"):
#   * auth none still needs a keyring entry for every name (mon., client.admin, client.rgw):
#     without one radosgw's mon handshake fails with EACCES (-13) and retries until
#     client_mount_timeout (default 300 s; 30 s here).
#   * with auth none, radosgw's default "secure" messenger mode fails the handshake: crc modes.
#   * one OSD: pool size 1, CRUSH chooses OSDs not hosts, `mon allow pool size one`; no mgr, so
#     no pg autoscaler. radosgw creates its 7 pools lazily: the warm-up below pays that (~2 s).
#   * the monitor stops itself when its disk has < 5% free (mon_data_avail_crit): lowered to 1%.
#   * admin socket paths must fit in 107 bytes: DIR is limited to 80 characters.
#   * ceph-osd leaves its pid file behind on fast shutdown: a pid is trusted only if that
#     process's command line names DIR/ceph.conf (never signal a reused pid).
#   * curl 7.88's --aws-sigv4 omits x-amz-content-sha256, which radosgw requires: sent by hand.
#   * beast without tcp_nodelay=1 answers every request but a connection's first ~40 ms late.
#   * `tr </dev/urandom | head` and `cmd | grep -q` die of SIGPIPE under pipefail: avoided.
#   * AWS SDK for JS >= 3.729 sends CRC32 checksums and aws-chunked bodies by default, which
#     Ceph 16 rejects (411 MissingContentLength): hence the *_CHECKSUM_* = WHEN_REQUIRED exports.
#   * the SDK's credential chain ends at the cloud instance-metadata service (off
#     loopback): AWS_EC2_METADATA_DISABLED=true.
set -euo pipefail

D=$(realpath -m "${1:-/tmp/tessera-s3}")
PORT=${2:-7480}
MON_PORT=${S3_MON_PORT:-$((PORT + 1))}
STORE=${S3_OBJECTSTORE:-memstore}
BUCKET=${S3_BUCKET:-tessera-test}
CONF=$D/ceph.conf
OWNED=$D/.tessera-s3          # only a DIR holding this marker is ever wiped
DAEMONS=(mon.a osd.0 client.rgw)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=$(date +%s%N)

log() { local t=$((($(date +%s%N) - T0) / 100000000)); printf '[s3-up %3d.%ds] %s\n' $((t / 10)) $((t % 10)) "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $STORE == memstore || $STORE == bluestore ]] || die "S3_OBJECTSTORE must be memstore or bluestore, not '$STORE'"
[[ $PORT =~ ^[0-9]+$ && $MON_PORT =~ ^[0-9]+$ ]] || die "PORT and S3_MON_PORT must be numbers"
[[ $BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "S3_BUCKET '$BUCKET' is not a valid bucket name"
((${#D} < 80)) || die "DIR must be shorter than 80 characters (admin socket paths): $D"

# ------------------------------------------------------------------ packages
declare -A PKG=([ceph-mon]=ceph-mon [ceph-osd]=ceph-osd [radosgw]=radosgw [radosgw-admin]=ceph-common
  [ceph]=ceph-common [ceph-authtool]=ceph-common [monmaptool]=ceph-base [uuidgen]=uuid-runtime
  [curl]=curl [ss]=iproute2)
missing=()
for cmd in "${!PKG[@]}"; do command -v "$cmd" >/dev/null || missing+=("${PKG[$cmd]}"); done
if ((${#missing[@]})); then
  [[ ${S3_NO_INSTALL:-} == 1 ]] && die "missing packages: ${missing[*]} (S3_NO_INSTALL=1)"
  sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  log "installing ceph-mon ceph-osd radosgw ceph-common ceph-base uuid-runtime curl iproute2 (~70 MB)"
  # In containers policy-rc.d keeps postinst from starting services; with systemd nothing
  # starts either, as there is no /etc/ceph/ceph.conf.
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    ceph-mon ceph-osd radosgw ceph-common ceph-base uuid-runtime curl iproute2 >&2
  log "installed"
fi

# ------------------------------------------------------------------ helpers
pid_of() { cat "$D/run/$1.pid" 2>/dev/null || true; }
# The pid file's process is alive AND runs with this DIR's ceph.conf.
alive() {
  local pid cmdline
  pid=$(pid_of "$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    cmdline=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) && [[ $cmdline == *"-c $CONF "* ]]
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${MAXTIME:-60}" "$@" || true; }
s3_answers() { [[ $(MAXTIME=3 http_code "http://127.0.0.1:$PORT/") == 200 ]]; }
port_taken() { [[ -n $(ss -Hltn "sport = :$1") ]]; }
ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"; }
osds_up() { ceph_cli osd stat -f json 2>/dev/null | sed -n 's/.*"num_up_osds":\([0-9]*\).*/\1/p'; }
# A signed request as the test user (SigV4 with an unsigned payload).
s3() {
  http_code --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
print_exports() {
  # shellcheck disable=SC1091
  . "$D/s3.env"
  local kv=(
    AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
    AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED AWS_RESPONSE_CHECKSUM_VALIDATION=WHEN_REQUIRED
    S3_BUCKET="$BUCKET" TESSERA_TEST_S3="s3://$BUCKET/"
  )
  printf 'export %q\n' "${kv[@]}"
}
ensure_bucket() {
  # shellcheck disable=SC1091
  . "$D/s3.env"
  local code
  code=$(s3 -X PUT "http://127.0.0.1:$PORT/$BUCKET")
  [[ $code == 200 || $code == 409 ]] || die "could not create bucket $BUCKET (HTTP $code)"
}

# ------------------------------------------------------------------ already up?
n=0
for name in "${DAEMONS[@]}"; do alive "$name" && n=$((n + 1)); done
if ((n == ${#DAEMONS[@]})) && [[ -f $D/s3.env ]] && s3_answers; then
  ensure_bucket
  log "already running in $D; S3 on 127.0.0.1:$PORT"
  print_exports
  exit 0
fi
if ((n > 0)); then
  log "$n of ${#DAEMONS[@]} daemons of $D alive but S3 not healthy: stopping them"
  bash "$HERE/s3-down.sh" "$D" >&2
fi

# ------------------------------------------------------------------ new cluster or restart?
fresh=1
if [[ $STORE == bluestore && -f $OWNED && -f $D/osd/ready ]] && grep -qx 'osd objectstore = bluestore' "$CONF"; then
  grep -qx "mon host = v2:127.0.0.1:$MON_PORT" "$CONF" ||
    die "the bluestore cluster in $D was made with another monitor port (its monmap keeps it): pass that S3_MON_PORT, or delete $D"
  fresh=0
  sed -i "s|^rgw frontends = .*|rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1|" "$CONF"
fi
for p in "$PORT" "$MON_PORT"; do
  port_taken "$p" && die "port $p is already taken (ss -ltnp 'sport = :$p'); pick another PORT / S3_MON_PORT"
done

if ((fresh)); then
  [[ -e $D && -n $(ls -A "$D" 2>/dev/null) && ! -f $OWNED ]] &&
    die "$D is not empty and was not made by s3-up.sh: refusing to wipe it"
  rm -rf "$D"
  mkdir -p "$D"/{mon,osd,run,log,rgw}
  touch "$OWNED"
  fsid=$(uuidgen)
  if [[ $STORE == memstore ]]; then
    objectstore="osd objectstore = memstore
memstore device bytes = ${S3_MEM_BYTES:-4294967296}"
  else
    # A sparse file, not a block device (no loop device, no privileges); a fixed 256 MiB cache
    # instead of the autotuned 4 GiB target keeps the OSD around 150-200 MB.
    objectstore="osd objectstore = bluestore
bluestore block create = true
bluestore block size = ${S3_BLOCK_BYTES:-21474836480}
bluestore fsck on mkfs = false
bluestore cache autotune = false
bluestore cache size = 268435456
osd memory target = 939524096"
  fi
  cat >"$CONF" <<EOF
# Made by tessera scripts/s3-up.sh: a one-node test cluster on loopback. No auth, no replicas.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms mon client mode = crc
ms client mode = crc
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
# radosgw's lazy pool creation waits on monitor commits
paxos propose interval = 0.1
paxos min wait = 0.01
client mount timeout = 30
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
keyring = $D/keyring
[mon]
mon data = $D/mon
[osd]
osd data = $D/osd
$objectstore
[client.rgw]
rgw data = $D/rgw
# tcp_nodelay: without it every request after the first on a kept-alive connection waits
# 40 ms (Nagle's algorithm here x the client's delayed ACK): measured 44 ms vs 2 ms per GET
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
# 512 threads (the default) only cost memory on a small machine; beast is asynchronous
rgw thread pool size = 64
# free deleted objects' data after ~1 min, not 2 h (memstore keeps it in RAM until then)
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.rgw --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$D/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" >>"$D/log/mkfs.log" 2>&1 ||
    die "ceph-mon --mkfs failed: see $D/log/mkfs.log"
  log "new $STORE cluster in $D"
else
  log "restarting the bluestore cluster in $D with its data"
fi

# ------------------------------------------------------------------ start the daemons
# From here a failure stops whatever was started: no half-up cluster is left behind.
trap 'rc=$?; if ((rc)); then log "start failed: stopping the daemons of $D"; bash "$HERE/s3-down.sh" "$D" >&2 || true; fi' EXIT
ceph-mon -c "$CONF" -i a 2>>"$D/log/mon.a.stderr" || die "ceph-mon did not start: see $D/log/mon.a.log"
log "ceph-mon up (pid $(pid_of mon.a))"
if ((fresh)); then
  osd_uuid=$(uuidgen)
  id=$(ceph_cli osd new "$osd_uuid") || die "'ceph osd new' failed: see $D/log/mon.a.log"
  [[ $id == 0 ]] || die "unexpected OSD id '$id'"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$D/log/mkfs.log" 2>&1 || die "ceph-osd --mkfs failed: see $D/log/mkfs.log"
fi
ceph-osd -c "$CONF" -i 0 2>>"$D/log/osd.0.stderr" || die "ceph-osd did not start: see $D/log/osd.0.log"
deadline=$((SECONDS + 60))
until [[ $(osds_up) == 1 ]]; do
  ((SECONDS < deadline)) || die "osd.0 did not come up within 60 s: see $D/log/osd.0.log"
  sleep 0.5
done
log "ceph-osd up (pid $(pid_of osd.0))"
# radosgw reads its configuration from the monitor before it forks: failures show here.
radosgw -c "$CONF" -n client.rgw 2>>"$D/log/client.rgw.stderr" || die "radosgw did not start: see $D/log/client.rgw.log"
deadline=$((SECONDS + 60))
until s3_answers; do
  p=$(pid_of client.rgw)
  [[ -n $p ]] && ! kill -0 "$p" 2>/dev/null && die "radosgw exited: see $D/log/client.rgw.log"
  # it stays up, serving nothing, when it cannot bind its port
  grep -q 'failed initializing frontend' "$D/log/client.rgw.log" 2>/dev/null &&
    die "radosgw could not listen on 127.0.0.1:$PORT (taken?): see $D/log/client.rgw.log"
  ((SECONDS < deadline)) || die "S3 did not answer on 127.0.0.1:$PORT within 60 s: see $D/log/client.rgw.log"
  sleep 0.25
done
log "radosgw answers on 127.0.0.1:$PORT (pid $(pid_of client.rgw))"

# ------------------------------------------------------------------ user, warm-up, bucket
if [[ ! -f $D/s3.env ]]; then
  ak=$(od -An -tx1 -N10 /dev/urandom | tr -d ' \n' | tr a-f A-F)
  sk=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
  (umask 077 && printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$ak" "$sk" >"$D/s3.env")
fi
# shellcheck disable=SC1091
. "$D/s3.env"
if ! timeout 60 radosgw-admin -c "$CONF" user info --uid=tessera >/dev/null 2>&1; then
  timeout 60 radosgw-admin -c "$CONF" user create --uid=tessera --display-name='tessera tests' \
    --access-key="$AWS_ACCESS_KEY_ID" --secret-key="$AWS_SECRET_ACCESS_KEY" --max-buckets=10000 >/dev/null ||
    die "radosgw-admin user create failed"
fi
# The first bucket and object make radosgw create its index and data pools (~2 s each): pay
# that here, not in the caller's first request.
U=http://127.0.0.1:$PORT
w=tessera-warmup-$$
codes="$(s3 -X PUT "$U/$w") $(s3 -X PUT --data-binary x "$U/$w/x") $(s3 "$U/$w/x") $(s3 -X DELETE "$U/$w/x") $(s3 -X DELETE "$U/$w")"
[[ $codes == '200 200 200 204 204' ]] || die "signed S3 round trip failed (HTTP $codes): see $D/log/client.rgw.log"
ensure_bucket
log "ready: bucket $BUCKET on $U; stop with: bash scripts/s3-down.sh $D"
print_exports
