#!/usr/bin/env bash
# The measured failover runs of docs/reliability.md: `match` at 50 jobs/s on
# the three-node cluster (cluster.sh start), with --audit, killing nodes
# when the harness's clock reaches a given second and, optionally,
# restarting them some seconds later.
#
#   deploy/cassandra/failover.sh REPORT.json AT "NODES" [AFTER "NODES"]
#   deploy/cassandra/failover.sh /tmp/kill1.json 15 "2"               # one node, 12 s into the measured window
#   deploy/cassandra/failover.sh /tmp/kill2.json 15 "2 3" 15 "2 3"    # two nodes, back 15 s later
#
# The harness's progress lines come every 5 s ("running [ 15s / 43s]"), its
# clock counting the 3 s warm-up; AT is one of them. Needs the release
# binaries (cargo build --release -p dispatch-gateway -p dispatch-loadtest).
set -euo pipefail
cd "$(dirname "$0")/../.."

report=$1 at=$2 kills=$3 after=${4:-} restarts=${5:-}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(
  until grep -q "running \[ *${at}s" "$log"; do sleep 0.2; done
  for n in $kills; do deploy/cassandra/cluster.sh kill "$n"; done
  echo "failover: killed node(s) $kills at $(date +%T)"
  if [ -n "$after" ]; then
    sleep "$after"
    for n in $restarts; do deploy/cassandra/cluster.sh restart "$n"; done
    echo "failover: restarted node(s) $restarts at $(date +%T)"
  fi
) &
DISPATCH_SCYLLA_REPLICATION=datacenter1:3 target/release/dispatch-loadtest match --server-storage scylla \
  --scylla-uri scylla://127.0.0.1:9042,127.0.0.2:9042,127.0.0.3:9042 \
  --jobs-per-sec 50 --duration 40 --contractors 500 --audit --report "$report" 2> "$log"
wait
