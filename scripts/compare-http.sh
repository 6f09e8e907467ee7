#!/usr/bin/env bash
# Our HTTP server against Hummingbird 2.28.1 (SwiftNIO) with the same two routes, one outside
# client (wrk -t1), one run, alternating ours and theirs in every cell, then 10,000 idle
# keep-alive connections held by each with fresh requests timed beside them.
#
#     swift build -c release --product orchestrator
#     scripts/compare-http.sh [seconds per cell, default 4] [rounds, default 2] [idle connections, default 10000]
#
# Needs wrk (apt-get install wrk). The Hummingbird program is compare/hummingbird-bench, a
# package of its own (the orchestrator uses no third-party packages); this script builds it
# on first use (SwiftPM needs hummingbird and its dependencies: from the network, or from a
# local mirror as on the project's machine; about 5 minutes on 2 cores).
#
# Routes, both servers: GET /hello answers "Hello, world!" (text/plain); POST /echo decodes
# the same 200-byte JSON document with Codable and answers it encoded again.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-4}"
rounds="${2:-2}"
idle="${3:-10000}"
command -v wrk > /dev/null || { echo "needs wrk (apt-get install wrk)"; exit 2; }
ours_binary="${ORCHESTRATOR:-.build/release/orchestrator}"
[ -x "$ours_binary" ] || { echo "needs $ours_binary (swift build -c release --product orchestrator)"; exit 2; }
theirs_binary=compare/hummingbird-bench/.build/release/HummingbirdBench
if [ ! -x "$theirs_binary" ]; then
    echo "building compare/hummingbird-bench (release)..."
    swift build -c release --package-path compare/hummingbird-bench > /dev/null
fi
ulimit -n "$(ulimit -Hn)"  # both servers and the idle benchmark hold one descriptor per connection
work=$(mktemp -d /tmp/compare-http.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done; wait 2> /dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ours_port=$(free_port); theirs_port=$(free_port)
"$ours_binary" bench http --serve "$ours_port" > "$work/ours.log" 2>&1 &
ours_pid=$!; pids+=($ours_pid)
"$theirs_binary" "$theirs_port" > "$work/theirs.log" 2>&1 &
theirs_pid=$!; pids+=($theirs_pid)
for port in "$ours_port" "$theirs_port"; do
    for _ in $(seq 1 200); do curl -s -m 1 "http://127.0.0.1:$port/hello" > /dev/null && break; sleep 0.05; done
    curl -s -m 1 "http://127.0.0.1:$port/hello" > /dev/null || { echo "the server on $port did not start; see $work"; exit 1; }
done

document='{"id":42,"name":"web-frontend","image":"nginx:1.27","replicas":25,"cpu":250,"memory":128,"labels":["tier=front","team=core"],"description":"a service of the orchestrator benchmark, sized to 200 bytes"}'
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$document'
LUA
# Both must echo the document: a server that answers something else is not measured.
for port in "$ours_port" "$theirs_port"; do
    answer=$(curl -s -m 2 -X POST -H 'Content-Type: application/json' --data "$document" "http://127.0.0.1:$port/echo")
    echo "$answer" | grep -q '"web-frontend"' || { echo "POST /echo on $port answered: $answer"; exit 1; }
done

# "requests/s p99 non2xx" from wrk's --latency output.
measure() {
    local output script=()
    [ "$2" = POST ] && script=(-s "$work/post.lua")
    local path=/hello; [ "$2" = POST ] && path=/echo
    output=$(wrk -t1 -c"$3" -d"${seconds}s" --latency "${script[@]}" "http://127.0.0.1:$1$path" 2>&1)
    local rate p99 bad
    rate=$(echo "$output" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$output" | awk '$1 == "99%" {print $2}')
    bad=$(echo "$output" | awk '/Non-2xx/ {print $NF} /Socket errors/ {print "errors"}' | head -1)
    echo "$rate $p99 ${bad:-0}"
}

echo "HTTP, wrk -t1 -d${seconds}s on the same 2 cores, ours (event-driven, our own HTTP/1.1) then Hummingbird 2.28.1 in each cell, $rounds rounds"
printf "%-5s %6s %6s %12s %12s %7s %10s %10s  %s\n" kind conns round "ours req/s" "hb req/s" ratio "ours p99" "hb p99" "non-2xx/errors"
for round in $(seq 1 "$rounds"); do
    for kind in GET POST; do
        for c in 16 64; do
            read -r our_rate our_p99 our_bad <<< "$(measure "$ours_port" "$kind" "$c")"
            read -r hb_rate hb_p99 hb_bad <<< "$(measure "$theirs_port" "$kind" "$c")"
            awk -v k="$kind" -v c="$c" -v r="$round" -v a="$our_rate" -v b="$hb_rate" -v p="$our_p99" -v q="$hb_p99" -v e="$our_bad/$hb_bad" 'BEGIN {
                printf "%-5s %6s %6s %12.0f %12.0f %7.2f %10s %10s  %s\n", k, c, r, a, b, a / b, p, q, e }'
        done
    done
done

echo
echo "$idle idle keep-alive connections, then fresh connections timed (orchestrator bench idle --port --pid)"
echo "ours:"
"$ours_binary" bench idle --connections "$idle" --port "$ours_port" --pid "$ours_pid" 2> /dev/null | sed 's/^/  /'
echo "Hummingbird:"
"$ours_binary" bench idle --connections "$idle" --port "$theirs_port" --pid "$theirs_pid" 2> /dev/null | sed 's/^/  /'
