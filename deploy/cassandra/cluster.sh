#!/usr/bin/env bash
# A three-node Apache Cassandra 5.0 cluster on 127.0.0.1, .2 and .3 (port
# 9042 each, JMX 7201–7203), for measured runs, not every CI run: RF 3 in
# data centre `datacenter1` (SimpleSnitch), lifecycle writes at LOCAL_QUORUM.
#
#   deploy/cassandra/cluster.sh start          # nodes one after another, each waits for CQL
#   deploy/cassandra/cluster.sh kill N         # SIGKILL node N (1–3): an outage
#   deploy/cassandra/cluster.sh restart N      # start node N again on its data
#   deploy/cassandra/cluster.sh stop           # every node, cleanly
#
# Then: DISPATCH_SCYLLA_REPLICATION=datacenter1:3 dispatch-loadtest match \
#   --server-storage scylla --scylla-uri scylla://127.0.0.1:9042,127.0.0.2:9042,127.0.0.3:9042
set -euo pipefail

source "$(dirname "$0")/lib.sh"
# For `dispatch serve` runs that kill nodes: no logins (lib.sh, launch).
export DISPATCH_CASSANDRA_AUTH=off
base="${DISPATCH_CASSANDRA_CLUSTER:-$cache/cluster}"

pid_of() { cat "$base/node$1/cassandra.pid" 2>/dev/null || true; }
alive() { local p; p="$(pid_of "$1")"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_node() {
  local n=$1 began=$SECONDS
  launch "$base/node$n" "127.0.0.$n" $((7200 + n)) 512m
  until answers "127.0.0.$n"; do
    if ! alive "$n"; then echo "node $n exited; see $base/node$n/log/system.log" >&2; tail -n 20 "$base/node$n/log/system.log" >&2; exit 1; fi
    if (( SECONDS - began > 300 )); then echo "node $n: no CQL after 300 s" >&2; exit 1; fi
    sleep 1
  done
  echo "node $n: CQL on 127.0.0.$n:9042 after $((SECONDS - began)) s"
}

stop_node() {
  local n=$1 signal=$2 p
  p="$(pid_of "$n")"
  [ -n "$p" ] || return 0
  kill "-$signal" "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null; do sleep 1; done
  rm -f "$base/node$n/cassandra.pid"
}

case "${1:-}" in
  start)
    fetch
    rm -rf "$base"
    for n in 1 2 3; do start_node "$n"; done
    echo "SCYLLA_URI=scylla://127.0.0.1:9042,127.0.0.2:9042,127.0.0.3:9042"
    ;;
  kill) stop_node "$2" KILL; echo "node $2 killed" ;;
  restart) start_node "$2" ;;
  stop) for n in 1 2 3; do stop_node "$n" TERM; done; echo "cluster stopped" ;;
  *) echo "usage: $0 start|kill N|restart N|stop" >&2; exit 2 ;;
esac
