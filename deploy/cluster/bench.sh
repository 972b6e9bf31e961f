#!/usr/bin/env bash
# Measures a cluster on this machine (BENCHMARKS.md, "More than one machine"):
#   failover  — kill -9 the owner of Des Moines N times under no load; each
#               time, how long until a gateway knows a new owner serving it.
#   hop       — the `match` load through a gateway to three engines, then the
#               same load against `dispatch serve` on the same CQL node: the
#               cost of the extra hop, posted → offer.
#   cpu       — during the hop run, CPU-seconds of each process kind
#               (gateway, engines, nats-server, the CQL node) per job and per
#               1,000 GPS fixes.
# Needs: the CQL test node (deploy/cassandra/cassandra.sh start), nats-server,
# release builds of dispatch and dispatch-loadtest, python3.
#   deploy/cluster/bench.sh failover [kills]
#   deploy/cluster/bench.sh hop [seconds]
#   deploy/cluster/bench.sh cpu seconds [dispatch-loadtest match flags…]   (the cluster only)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/release
work=$(mktemp -d)
secret=bench-secret-of-at-least-32-bytes
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_port() { for _ in $(seq 400); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing on $1" >&2; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" > "$work/nats.log" 2>&1 &
nats_pid=$!; pids+=("$nats_pid")
wait_port "$nats_port"
prefix="bench$(date +%s)"
cat > "$work/cluster.toml" <<TOML
jwt_secret = "$secret"
storage = "scylla"
[scylla]
nodes = ["127.0.0.1:9042"]
keyspace_prefix = "$prefix"
# The test node's default superuser (deploy/cassandra/cassandra.sh).
user = "cassandra"
password = "cassandra"
[cluster]
nats_url = "nats://127.0.0.1:$nats_port"
[cluster.pins]
"des-moines" = "engine-a"
TOML

declare -A engine_pid engine_port
start_engine() {
  local name=$1 port; port=${engine_port[$name]:-$(free_port)}; engine_port[$name]=$port
  "$bin/dispatch" engine --config "$work/cluster.toml" --node "$name" --listen "127.0.0.1:$port" >> "$work/$name.log" 2>&1 &
  engine_pid[$name]=$!; pids+=("$!")
  wait_port "$port"
}
start_engine engine-a; sleep 2; start_engine engine-b; start_engine engine-c
gw_port=$(free_port)
"$bin/dispatch" gateway --config "$work/cluster.toml" --node gateway-1 --listen "127.0.0.1:$gw_port" > "$work/gateway.log" 2>&1 &
gw_pid=$!; pids+=("$gw_pid")
wait_port "$gw_port"
owner() { curl -s "127.0.0.1:$gw_port/readyz" | json "d['cities']['des-moines']['owner'] and '%s %s' % (d['cities']['des-moines']['owner']['node'], d['cities']['des-moines']['owner']['epoch']) or ''"; }
until [ "$(owner | cut -d' ' -f1)" = engine-a ]; do sleep 0.2; done

case "${1:-failover}" in
failover)
  kills=${2:-10}
  for i in $(seq "$kills"); do
    read -r node epoch <<< "$(owner)"
    t0=$(now)
    kill -9 "${engine_pid[$node]}"
    while :; do
      read -r n2 e2 <<< "$(owner)" || true
      [ -n "${e2:-}" ] && [ "$e2" -gt "$epoch" ] && break
      sleep 0.05
    done
    t1=$(now)
    printf 'kill %d: %s (epoch %s) -> %s (epoch %s) in %.2f s\n' "$i" "$node" "$epoch" "$n2" "$e2" "$(echo "$t1 - $t0" | bc)"
    start_engine "$node"
    # Settle: the pinned city returns to engine-a when it is back (a handoff, not a failover).
    until [ "$(owner | cut -d' ' -f1)" = engine-a ]; do sleep 0.2; done
    sleep 1
  done
  ;;
hop|cpu)
  mode=$1
  secs=${2:-30}
  shift $(( $# >= 2 ? 2 : $# ))
  ticks() { printf '%s %s %s %s %s\n' "$(cpu_ticks "$gw_pid")" "$(( $(cpu_ticks "${engine_pid[engine-a]}") + $(cpu_ticks "${engine_pid[engine-b]}") + $(cpu_ticks "${engine_pid[engine-c]}") ))" "$(cpu_ticks "$nats_pid")" "$(cpu_ticks "$(pgrep -f CassandraDaemon | head -1)")"; }
  before=$(ticks)
  "$bin/dispatch-loadtest" match --target "127.0.0.1:$gw_port" --jwt-secret "$secret" --duration "$secs" "$@" > "$work/cluster.txt" 2>&1 || true
  after=$(ticks)
  echo "through a gateway:"; grep -E "offer|jobs|gps" "$work/cluster.txt" | head -20
  echo "cpu ticks (gateway engines nats cassandra) before: $before after: $after (100 ticks = 1 CPU-second)"
  [ "$mode" = cpu ] && exit 0
  serve_port=$(free_port)
  # Its own keyspaces: the cluster's cities are not its to rehydrate.
  sed "s/keyspace_prefix = \"$prefix\"/keyspace_prefix = \"${prefix}s\"/" "$work/cluster.toml" > "$work/serve.toml"
  "$bin/dispatch" serve --config "$work/serve.toml" --listen "127.0.0.1:$serve_port" --data-dir "$work/serve" > "$work/serve.log" 2>&1 &
  pids+=("$!")
  wait_port "$serve_port"
  "$bin/dispatch-loadtest" match --target "127.0.0.1:$serve_port" --jwt-secret "$secret" --duration "$secs" > "$work/serve.txt" 2>&1 || true
  echo "against dispatch serve:"; grep -E "offer|jobs|gps" "$work/serve.txt" | head -20
  ;;
esac
