#!/usr/bin/env bash
# A single-node Apache Cassandra 5.0 on 127.0.0.1:9042 for the tests of the
# ScyllaDB backend (the same CQL native protocol). Java runs only this test
# server; the product is Rust.
#
#   deploy/cassandra/cassandra.sh start   # fetch the jars once, boot on fresh data, wait for CQL, print the URI
#
# The node authenticates and authorizes (cassandra.yaml): log in as the
# default superuser, cassandra / cassandra, as the printed URI does.
#   deploy/cassandra/cassandra.sh stop    # stop it cleanly (SIGTERM, Cassandra drains)
#   deploy/cassandra/cassandra.sh resume  # boot again on the data the last stop left
#   deploy/cassandra/cassandra.sh status
#
# The jars come from Maven Central (pom.xml beside this script) into
# $DISPATCH_CASSANDRA_CACHE (default ~/.cache/dispatch-cassandra), reused when
# present; the node's data and log live in $DISPATCH_CASSANDRA_RUN (default
# the cache's run/), wiped on every start. A second node beside the shared
# one (the outage test stops its own) takes another loopback address and JMX
# port: $DISPATCH_CASSANDRA_ADDRESS (default 127.0.0.1) and
# $DISPATCH_CASSANDRA_JMX (default 7199).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
run="${DISPATCH_CASSANDRA_RUN:-$cache/run}"
pidfile="$run/cassandra.pid"
address="${DISPATCH_CASSANDRA_ADDRESS:-127.0.0.1}"
jmx="${DISPATCH_CASSANDRA_JMX:-7199}"
port=9042
# How long a start may take on a busy 2-core machine before giving up.
start_timeout="${DISPATCH_CASSANDRA_START_TIMEOUT:-240}"

cql_answers() {
  answers "$address"
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# start fresh|keep: on wiped data, or on what the last stop left.
start() {
  local data=$1
  if running; then
    echo "cassandra: already running (pid $(cat "$pidfile"))"
    return
  fi
  if cql_answers; then
    echo "cassandra: something already answers on $address:$port" >&2
    exit 1
  fi
  local began=$SECONDS
  fetch
  if [ "$data" = fresh ]; then
    rm -rf "$run"
  fi
  mkdir -p "$run/log"
  # Its own seed: a second node stays out of the shared one's cluster.
  launch "$run" "$address" "$jmx" 768m "$address"
  until cql_answers; do
    if ! running; then
      echo "cassandra: the node exited during start; its log:" >&2
      tail -n 40 "$run/log/system.log" "$run/log/stdout.log" >&2 || true
      exit 1
    fi
    if (( SECONDS - began > start_timeout )); then
      echo "cassandra: no CQL on $address:$port after ${start_timeout}s" >&2
      tail -n 40 "$run/log/system.log" >&2 || true
      stop
      exit 1
    fi
    sleep 1
  done
  # CQL opens a moment before the default superuser exists on fresh data.
  if [ "$data" = fresh ]; then
    until grep -q "default superuser role" "$run/log/system.log" 2>/dev/null; do
      if (( SECONDS - began > start_timeout )); then
        echo "cassandra: no default superuser after ${start_timeout}s" >&2
        stop
        exit 1
      fi
      sleep 0.2
    done
  fi
  echo "cassandra: $version answering CQL on $address:$port after $((SECONDS - began)) s (pid $(cat "$pidfile"))"
  echo "SCYLLA_URI=scylla://cassandra:cassandra@$address:$port"
}

stop() {
  if ! running; then
    echo "cassandra: not running"
    return
  fi
  local pid began=$SECONDS
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - began > 60 )); then
      echo "cassandra: still running after 60 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 1
  done
  rm -f "$pidfile"
  echo "cassandra: stopped after $((SECONDS - began)) s"
}

case "${1:-}" in
  start) start fresh ;;
  resume) start keep ;;
  stop) stop ;;
  status) if running && cql_answers; then echo "cassandra: running (pid $(cat "$pidfile"))"; else echo "cassandra: not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|resume|status" >&2; exit 2 ;;
esac
