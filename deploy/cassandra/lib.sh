# Shared by cassandra.sh (one test node) and cluster.sh (three nodes):
# where the jars are, fetching them, and starting one node.
# shellcheck shell=bash

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's:.*<version>\(5\.[0-9.]*\)</version>.*:\1:p' "$here/pom.xml" | head -1)"
cache="${DISPATCH_CASSANDRA_CACHE:-$HOME/.cache/dispatch-cassandra}"
lib="$cache/$version/lib"

# cassandra-all and its dependencies from Maven Central, once.
fetch() {
  if [ -f "$lib/cassandra-all-$version.jar" ]; then
    return
  fi
  echo "cassandra: fetching cassandra-all $version and its dependencies into $lib"
  mkdir -p "$lib"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib"
}

# Starts a node in the background: launch DIR ADDRESS JMX_PORT HEAP [SEED].
# Its config is cassandra.yaml with DIR, ADDRESS and SEED (default
# 127.0.0.1, the first node) filled in; its pid goes to DIR/cassandra.pid,
# its log to DIR/log/.
launch() {
  local dir=$1 address=$2 jmx=$3 heap=$4 seed=${5:-127.0.0.1}
  mkdir -p "$dir/log"
  sed -e "s:@DIR@:$dir:g" \
      -e "s:^listen_address\: .*:listen_address\: $address:" \
      -e "s:^rpc_address\: .*:rpc_address\: $address:" \
      -e "s:seeds\: \"127.0.0.1\::seeds\: \"$seed\::" \
      "$here/cassandra.yaml" > "$dir/cassandra.yaml"
  # DISPATCH_CASSANDRA_AUTH=off: no logins and no permissions (a cluster for
  # `dispatch serve`'s measured runs, which kill nodes: with auth, the
  # system_auth keyspace would need RF 3 before any node could die).
  if [ "${DISPATCH_CASSANDRA_AUTH:-on}" = off ]; then
    sed -i -e 's:^authenticator\: .*:authenticator\: AllowAllAuthenticator:' \
           -e 's:^authorizer\: .*:authorizer\: AllowAllAuthorizer:' "$dir/cassandra.yaml"
  fi
  local jamm opts=()
  jamm="$(ls "$lib"/jamm-*.jar | head -1)"
  while IFS= read -r line; do
    # `--add-opens a/b=C` as one argument: `--add-opens=a/b=C`.
    case "$line" in ''|'#'*) ;; --*) opts+=("${line/ /=}") ;; *) opts+=("$line") ;; esac
  done < "$here/jvm17.options"
  nohup java \
    -Xms"$heap" -Xmx"$heap" -Xss512k -XX:+UseG1GC -XX:+CrashOnOutOfMemoryError -XX:ActiveProcessorCount=2 \
    "${opts[@]}" \
    -javaagent:"$jamm" \
    -Djava.net.preferIPv4Stack=true \
    -Dcassandra.config="file://$dir/cassandra.yaml" \
    -Dcassandra.storagedir="$dir" \
    -Dcassandra.logdir="$dir/log" \
    -Dlogback.configurationFile="$here/logback.xml" \
    -Dcassandra.jmx.local.port="$jmx" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=1000 \
    -Dcassandra.superuser_setup_delay_ms=0 \
    -Dcassandra-foreground=yes \
    -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon \
    > "$dir/log/stdout.log" 2>&1 &
  echo $! > "$dir/cassandra.pid"
}

# Whether CQL answers on ADDRESS:9042 (the native transport opens last, once
# the node has started).
answers() {
  (exec 3<>"/dev/tcp/$1/9042") 2>/dev/null
}
