#!/usr/bin/env bash
# Local services for tests and demos on a machine without Docker:
#   infra/scripts/services.sh start   -> starts librdkafka's mock Kafka cluster (Debian kcat),
#                                        writes .services/env (KAFKA_BROKERS=...)
#   infra/scripts/services.sh stop    -> stops what start started
#   infra/scripts/services.sh running -> exits 0 when the mock cluster start started is still up
# With Docker, use docker-compose.yml instead (real Kafka and ClickHouse).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.services"
mkdir -p "$dir"
case "${1:-}" in
  start)
    if "$0" running; then
      echo "mock Kafka already running: $(cat "$dir/env")"; exit 0
    fi
    command -v kcat >/dev/null || { echo "kcat is missing: apt-get install -y kcat" >&2; exit 1; }
    : > "$dir/kafka.log"
    nohup kcat -b 127.0.0.1:1 -X test.mock.num.brokers=1 -C -t __streamrec_keepalive -o end -q 2>"$dir/kafka.log" >/dev/null &
    echo $! > "$dir/kafka.pid"
    for _ in $(seq 1 100); do
      addr=$(grep -o 'replaced with [0-9.:,]*' "$dir/kafka.log" | awk '{print $3}' || true)
      [ -n "$addr" ] && break
      sleep 0.1
    done
    if [ -z "${addr:-}" ]; then
      echo "mock Kafka did not start within 10 s: $(cat "$dir/kafka.log")" >&2
      kill "$(cat "$dir/kafka.pid")" 2>/dev/null || true
      rm -f "$dir/kafka.pid"
      exit 1
    fi
    printf "KAFKA_BROKERS='%s'\nKAFKA_IS_MOCK=1\nKAFKA_BROKER_KIND='librdkafka mock cluster (kcat, started by infra/scripts/services.sh)'\n" "$addr" > "$dir/env"
    echo "mock Kafka at $addr"
    ;;
  running)
    # The pid file names a live kcat (not a process that reused the pid).
    [ -f "$dir/kafka.pid" ] && [ "$(ps -p "$(cat "$dir/kafka.pid")" -o comm= 2>/dev/null)" = kcat ]
    ;;
  stop)
    if [ -f "$dir/kafka.pid" ]; then kill "$(cat "$dir/kafka.pid")" 2>/dev/null || true; rm -f "$dir/kafka.pid" "$dir/env"; fi
    ;;
  *) echo "usage: $0 start|stop|running" >&2; exit 2 ;;
esac
