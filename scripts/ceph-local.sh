#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for rbdj's interop tests: one mon and one memstore OSD on
# 127.0.0.1, auth none, pool `rbd` (size 1, rbd-initialised). Needs the Debian packages ceph-mon,
# ceph-osd and ceph-common (Ceph 16.2).
#
# usage: scripts/ceph-local.sh start DIR [PORT]   start (or reuse) the cluster under DIR; prints
#                                                 `export CEPH_CONF=DIR/ceph.conf` on stdout
#        scripts/ceph-local.sh env DIR            print the export line if the cluster is up
#        scripts/ceph-local.sh stop DIR           stop the daemons by PID and delete DIR (idempotent;
#                                                 KEEP=1 keeps DIR, e.g. for its logs)
#        scripts/ceph-local.sh pair-start DIR     two clusters DIR/a and DIR/b with the rbd-mirror daemon
#                                                 replicating pool `rbd` from A to B (journal mode, pool
#                                                 mode; needs the rbd-mirror package); prints
#                                                 `export RBDJ_CEPH_MIRROR_A=...` and `..._B=...`
#        scripts/ceph-local.sh pair-stop DIR      stop both clusters and the daemon, delete DIR
# PORT defaults to a free port chosen by the kernel. Progress and errors go to stderr; on a failed
# start the daemon logs' tails are printed and the daemons are stopped.
set -euo pipefail

usage() { echo "usage: $0 start|stop|env DIR [PORT]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
conf=$dir/ceph.conf
case $dir in /|"$HOME"|/tmp|/root|/work|/work/*/) echo "refusing DIR $dir" >&2; exit 2 ;; esac
log() { echo "ceph-local: $*" >&2; }

alive() { # alive PIDFILE: the daemon named in PIDFILE runs
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

running() { alive "$dir/run/mon.a.pid" && alive "$dir/run/osd.0.pid"; }

ceph_() { timeout 30 ceph -c "$conf" --connect-timeout 10 "$@"; }

free_port() {
  local py
  for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null 2>&1; then
      "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
      return
    fi
  done
  # No python: probe a pseudo-random range with bash's /dev/tcp.
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  log "no free port found"; return 1
}

stop_daemons() {
  local pf pid pids=()
  for pf in "$dir"/run/*.pid; do
    [ -f "$pf" ] || continue
    pid=$(cat "$pf" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored SIGTERM; SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
  done
}

fail_start() {
  log "start failed: $*"
  local f
  for f in "$dir"/log/*.log; do [ -f "$f" ] && { log "--- tail of $f"; tail -n 15 "$f" >&2; }; done
  stop_daemons
  exit 1
}

start() {
  for tool in ceph-mon ceph-osd ceph monmaptool rbd rados uuidgen; do
    command -v "$tool" >/dev/null 2>&1 || { log "missing $tool (apt-get install ceph-mon ceph-osd ceph-common)"; exit 1; }
  done
  if [ -f "$conf" ] && running; then
    log "already running"
    echo "export CEPH_CONF=$conf"
    return
  fi
  if [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    # A half-dead cluster: memstore kept nothing anyway, so start over from scratch.
    log "clearing stale $dir"
    stop_daemons
    rm -rf "$dir"
  fi
  mkdir -p "$dir"/{mon,osd0,run,log}
  local port fsid
  port=${1:-$(free_port)}
  fsid=$(uuidgen)
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool delete = true
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1
[mon]
mon data = $dir/mon
mon cluster log file = $dir/log/cluster.log
[osd]
osd data = $dir/osd\$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd max object name len = 256
osd max object namespace len = 64
osd class load list = *
osd class default list = *
CONF
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1 || fail_start "mon mkfs"
  export CEPH_CONF=$conf
  ceph-mon -c "$conf" -i a >/dev/null 2>&1 || fail_start "ceph-mon did not start"
  local ok=
  for _ in $(seq 60); do ceph_ mon stat >/dev/null 2>&1 && { ok=1; break; }; sleep 0.5; done
  [ -n "$ok" ] || fail_start "monitor not answering"
  ceph_ osd create >/dev/null 2>&1 || fail_start "osd create"
  ceph_ osd crush add osd.0 1.0 host=localhost root=default >/dev/null 2>&1 || true
  ceph-osd -c "$conf" -i 0 --mkfs >/dev/null 2>&1 || fail_start "osd mkfs"
  ceph-osd -c "$conf" -i 0 >/dev/null 2>&1 || fail_start "ceph-osd did not start"
  ok=
  for _ in $(seq 120); do
    ceph_ osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && { ok=1; break; }
    sleep 0.5
  done
  [ -n "$ok" ] || fail_start "OSD did not come up"
  ceph_ osd pool create rbd 8 >/dev/null 2>&1 || fail_start "pool create"
  timeout 60 rbd -c "$conf" pool init rbd || fail_start "rbd pool init"
  # The pool is usable once an object can be written and removed.
  ok=
  for _ in $(seq 60); do
    if timeout 10 rados -c "$conf" -p rbd put ceph-local-probe /dev/null 2>/dev/null &&
       timeout 10 rados -c "$conf" -p rbd rm ceph-local-probe 2>/dev/null; then ok=1; break; fi
    sleep 0.5
  done
  [ -n "$ok" ] || fail_start "pool rbd not writable"
  log "up: $(grep '^mon host' "$conf")"
  echo "export CEPH_CONF=$conf"
}

case $cmd in
start) shift 2; start "$@" ;;
env)
  if [ -f "$conf" ] && running; then echo "export CEPH_CONF=$conf"; else log "not running under $dir"; exit 1; fi
  ;;
stop)
  [ -d "$dir" ] || exit 0
  stop_daemons
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
  ;;
pair-start)
  command -v rbd-mirror >/dev/null 2>&1 || { log "missing rbd-mirror (apt-get install rbd-mirror)"; exit 1; }
  self=$(realpath "$0")
  "$self" start "$dir/a" >/dev/null
  "$self" start "$dir/b" >/dev/null
  A=$dir/a/ceph.conf B=$dir/b/ceph.conf
  if ! alive "$dir/b/run/rbd-mirror.pid"; then
    mon_a=$(sed -n 's/^mon host = //p' "$A")
    timeout 60 rbd -c "$A" mirror pool enable rbd pool --site-name site-a
    timeout 60 rbd -c "$B" mirror pool enable rbd pool --site-name site-b
    # auth is off; the peer record still wants a key
    ceph-authtool --gen-print-key >"$dir/peer.key"
    timeout 60 rbd -c "$B" mirror pool peer add rbd client.admin@site-a --remote-mon-host "$mon_a" \
      --remote-key-file "$dir/peer.key" --direction rx-only >/dev/null
    # rbd-mirror finds its local cluster by the default search, so CEPH_CONF names B's file
    CEPH_CONF=$B rbd-mirror --id admin --log-file "$dir/b/log/rbd-mirror.log" \
      --pid-file "$dir/b/run/rbd-mirror.pid" || { log "rbd-mirror did not start"; exit 1; }
    for _ in $(seq 50); do alive "$dir/b/run/rbd-mirror.pid" && break; sleep 0.2; done
    alive "$dir/b/run/rbd-mirror.pid" || { log "rbd-mirror exited; see $dir/b/log/rbd-mirror.log"; exit 1; }
  fi
  log "mirror pair up: A=$A B=$B"
  echo "export RBDJ_CEPH_MIRROR_A=$A"
  echo "export RBDJ_CEPH_MIRROR_B=$B"
  ;;
pair-stop)
  [ -d "$dir" ] || exit 0
  self=$(realpath "$0")
  # B first: its run dir holds the rbd-mirror pid file, stopped with B's daemons.
  KEEP=${KEEP:-0} "$self" stop "$dir/b" || true
  KEEP=${KEEP:-0} "$self" stop "$dir/a" || true
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
  ;;
*) usage ;;
esac
