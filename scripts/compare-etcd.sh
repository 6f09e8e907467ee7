#!/usr/bin/env bash
# Commit throughput and latency of ours and etcd, one outside client (wrk), one run,
# alternating: 3 nodes each, fsync on, writes to the leader, at several connection counts.
# Needs Debian's etcd-server and wrk (apt-get install etcd-server wrk) and a release build:
#
#     swift build -c release --product orchestrator
#     scripts/compare-etcd.sh [seconds per cell, default 10] [connections, default "1 8 32 128"]
#
# ORCHESTRATOR=path/to/orchestrator runs another build of ours (to compare two of our builds).
# ROUNDS=n (default 3) measures each cell n times, ours and etcd back to back in turns (ours
# first in odd rounds, etcd first in even ones), and prints the medians of both sides and the
# median of the n ratios of each pair: this machine's speed drifts by half within minutes, and
# a pair measured a few seconds apart sees the same phase, while one pair alone can land on a
# disk stall on either side. A line under each row then lists every round's own req/s, p50
# and p99 ratios, in the order the rounds ran. ROUNDS=1 is the quick look (a third of the time).
#
# wrk 4.1 corrects its latency percentiles for coordinated omission (each latency longer than
# twice the mean interval between a connection's requests adds samples below it), so a p99
# here says how much of a turn stalls covered, not how many requests were slow: one 250 ms
# disk stall in an 8 s turn puts p99 near 170 ms on either side (docs/cluster-benchmarks-history.md,
# session 20).
#
# Ours: POST /service (a service of one replica, committed and applied) to the leader.
# etcd: POST /v3/kv/put of a 100-byte value to the leader (etcd's own default: fsync on).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-1 8 32 128}"
for tool in etcd wrk; do command -v "$tool" > /dev/null || { echo "needs $tool (apt-get install etcd-server wrk)"; exit 2; }; done
binary="${ORCHESTRATOR:-.build/release/orchestrator}"
[ -x "$binary" ] || { echo "needs $binary (swift build -c release --product orchestrator)"; exit 2; }
work=$(mktemp -d /tmp/compare-etcd.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done; wait 2> /dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# etcd: three members on 127.0.0.1:23791-23793 (clients) and 23801-23803 (peers).
cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
for n in 1 2 3; do
    etcd --name "e$n" --data-dir "$work/etcd-$n" --listen-client-urls "http://127.0.0.1:2379$n" --advertise-client-urls "http://127.0.0.1:2379$n" \
         --listen-peer-urls "http://127.0.0.1:2380$n" --initial-advertise-peer-urls "http://127.0.0.1:2380$n" \
         --initial-cluster "$cluster" --initial-cluster-state new --heartbeat-interval 50 --election-timeout 500 > "$work/etcd-$n.log" 2>&1 &
    pids+=($!)
done
# Ours: an orchestrator with one cluster of three nodes, H 50 ms, T 500 ms (the defaults).
"$binary" --port 23700 --nodes 3 --data-dir "$work/ours" > "$work/ours.log" 2>&1 &
pids+=($!)

# Each side's leader now: etcd's client URL, our leader's port (nothing when none is known
# within 20 s).
find_etcd_leader() {
    local n status member leader
    for _ in $(seq 1 200); do
        for n in 1 2 3; do
            status=$(curl -s -m 1 -X POST "http://127.0.0.1:2379$n/v3/maintenance/status" -d '{}' || true)
            member=$(echo "$status" | sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p'); leader=$(echo "$status" | sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p')
            if [ -n "$member" ] && [ "$member" = "$leader" ]; then echo "http://127.0.0.1:2379$n"; return; fi
        done
        sleep 0.1
    done
}
is_our_leader() {
    local answer; answer=$(curl -s -m 1 "http://127.0.0.1:$1/" || true)
    case "$answer" in *'"state":"leader"'*) return 0 ;; *) return 1 ;; esac
}
find_our_leader() {
    local port
    for _ in $(seq 1 200); do
        port=$(curl -s -m 1 http://127.0.0.1:23700/clusters/0 | sed -n 's/.*"leader":"localhost:\([0-9]*\)".*/\1/p')
        if [ -n "$port" ] && is_our_leader "$port"; then echo "$port"; return; fi
        sleep 0.1
    done
}
leader_etcd=$(find_etcd_leader)
[ -n "$leader_etcd" ] || { echo "etcd elected no leader; see $work"; exit 1; }
leader_ours=$(find_our_leader)
[ -n "$leader_ours" ] || { echo "our cluster elected no leader; see $work"; exit 1; }
# Before each turn: still the leader? A leadership that moved during a run (a stall longer
# than the election timeout) would otherwise leave the rest of the run measuring a follower
# that forwards every request. Said on standard error when it happens.
check_leaders() {
    if ! is_our_leader "$leader_ours"; then
        local now; now=$(find_our_leader)
        if [ "$now" = "$leader_ours" ]; then
            echo "note: our leader on port $leader_ours stopped leading and was elected again before the $1-connection turns of round $2; the nodes' logs say:" >&2
        else
            echo "note: our leader moved from port $leader_ours to ${now:-none} before the $1-connection turns of round $2; the nodes' logs say:" >&2
        fi
        grep -h "term [0-9]*:" "$work"/ours/cluster-0/node-*.log 2> /dev/null | sort | tail -6 | sed 's/^/      /' >&2 || true
        [ -n "$now" ] && leader_ours=$now
    fi
    local etcd_now; etcd_now=$(find_etcd_leader)
    if [ -n "$etcd_now" ] && [ "$etcd_now" != "$leader_etcd" ]; then
        echo "note: etcd's leader moved from $leader_etcd to $etcd_now before the $1-connection turns of round $2" >&2
        leader_etcd=$etcd_now
    fi
}

cat > "$work/ours.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"container": {"name": "bench", "replicas": 1}}'
LUA
value=$(head -c 100 /dev/zero | tr '\0' 'x' | base64 -w0)
cat > "$work/etcd.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key": "$(printf bench | base64)", "value": "$value"}'
LUA

# CPU seconds (user + system) used so far by the given processes, from /proc.
cpu_seconds() {
    local ticks=0 pid
    for pid in "$@"; do ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2> /dev/null || echo 0))); done
    echo "$ticks $(getconf CLK_TCK)" | awk '{print $1 / $2}'
}
# wrk prints latencies as 1.23ms, 456.78us or 1.02s: in milliseconds.
ms() { echo "$1" | awk '/us$/ {sub("us",""); print $0/1000; next} /ms$/ {sub("ms",""); print $0; next} /s$/ {sub("s",""); print $0*1000}'; }

# The machine's busy and idle time so far (all CPUs, in clock ticks, from /proc/stat): busy
# counts user, system and interrupt time (not idle, iowait or steal), so wrk, the kernel's
# network work on behalf of both ends and any other process are in it.
host_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
# "busy-microseconds-per-request idle-percent" between two host_ticks readings.
host_per_request() {
    echo "$1 $2" | awk -v n="$3" -v hz="$(getconf CLK_TCK)" '{ busy = $3 - $1; idle = $4 - $2
        printf "%.0f %.0f", (n > 0 ? busy * 1e6 / hz / n : 0), (busy + idle > 0 ? 100 * idle / (busy + idle) : 0) }'
}

# "requests/s p50 p99 cpu-microseconds-per-request host-busy-microseconds-per-request
# host-idle-percent" from wrk's --latency output, the CPU the servers ($4...) used meanwhile
# (all three members: followers work too) and the machine's.
measure() {
    local output before after host_before host_after
    before=$(cpu_seconds "${@:4}")
    host_before=$(host_ticks)
    output=$(wrk -t1 -c"$2" -d"${seconds}s" --latency -s "$3" "$1" 2>&1)
    host_after=$(host_ticks)
    after=$(cpu_seconds "${@:4}")
    local rate p50 p99 requests
    rate=$(echo "$output" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$output" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$output" | awk '$1 == "99%" {print $2}')
    requests=$(echo "$output" | awk '/requests in/ {print $1}')
    echo "$rate $(ms "$p50") $(ms "$p99") $(awk -v a="$before" -v b="$after" -v n="$requests" 'BEGIN { printf "%.0f", (n > 0 ? (b - a) * 1e6 / n : 0) }') $(host_per_request "$host_before" "$host_after" "$requests")"
}

our_pids=$(pgrep -P "${pids[3]}" | tr '\n' ' ')  # the orchestrator's node processes
etcd_pids="${pids[0]} ${pids[1]} ${pids[2]}"
rounds="${ROUNDS:-3}"
echo "commit through the leader, 3 nodes, fsync on, wrk -t1, ${seconds} s per cell, ours and etcd back to back at each count$([ "$rounds" -gt 1 ] && echo ", $rounds rounds: medians, and the median of the rounds' ratios")"
echo "(cpu: microseconds of CPU, user + system, of all three members per acknowledged request;"
echo " host: microseconds the whole machine was busy per acknowledged request, wrk and the kernel's"
echo " network work included, and its idle share: where idle is near 0, req/s follows host per request)"
printf "%-6s %10s %10s %6s %9s %9s %6s %9s %9s %6s %9s %9s %6s %9s %9s %6s %5s %5s\n" conns "ours req/s" "etcd req/s" ratio "ours p50" "etcd p50" ratio "ours p99" "etcd p99" ratio "ours cpu" "etcd cpu" ratio "ours host" "etcd host" ratio "idle" "idle"
for c in $connections; do
    pairs=""
    for round in $(seq 1 "$rounds"); do
        check_leaders "$c" "$round"
        # shellcheck disable=SC2086
        if [ $((round % 2)) -eq 1 ]; then
            ours=$(measure "http://127.0.0.1:$leader_ours/service" "$c" "$work/ours.lua" $our_pids)
            theirs=$(measure "$leader_etcd/v3/kv/put" "$c" "$work/etcd.lua" $etcd_pids)
        else
            theirs=$(measure "$leader_etcd/v3/kv/put" "$c" "$work/etcd.lua" $etcd_pids)
            ours=$(measure "http://127.0.0.1:$leader_ours/service" "$c" "$work/ours.lua" $our_pids)
        fi
        pairs+="$ours $theirs"$'\n'
    done
    # Each line: ours' six figures (req/s, p50, p99, cpu, host, idle), then etcd's.
    printf "%s" "$pairs" | awk -v c="$c" '
        function median(values, n,    i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && values[j - 1] > values[j]; j--) { t = values[j]; values[j] = values[j - 1]; values[j - 1] = t }
            return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
        }
        { n++; for (k = 1; k <= 6; k++) { o[k, n] = $k; e[k, n] = $(k + 6) } }
        END {
            printf "%-6s", c
            for (k = 1; k <= 6; k++) {
                split("", a); split("", b); split("", r)
                for (i = 1; i <= n; i++) { a[i] = o[k, i]; b[i] = e[k, i]; r[i] = (e[k, i] > 0 ? o[k, i] / e[k, i] : 0) }
                if (k <= 3) { rounds[k] = ""; for (i = 1; i <= n; i++) rounds[k] = rounds[k] sprintf(" %.2f", r[i]) }
                if (k == 6) { printf " %4.0f%% %4.0f%%", median(a, n), median(b, n); continue }
                format = (k == 2 || k == 3) ? " %9.2f %9.2f %6.2f" : (k == 1 ? " %10.0f %10.0f %6.2f" : " %9.0f %9.0f %6.2f")
                printf format, median(a, n), median(b, n), median(r, n)
            }
            printf "\n"
            # With several rounds, each round'"'"'s own ratios, in the order they ran: the spread
            # the medians above come from.
            if (n > 1) printf "%-6s rounds: req/s%s; p50%s; p99%s\n", "", rounds[1], rounds[2], rounds[3]
        }'
done
# Leaders that sent no heartbeats for an election timeout (500 ms) or more during the run (a
# long fdatasync, a starved CPU), either of which can move a leadership: ours log "heartbeats
# held back" (and count node_heartbeat_stalls_total); etcd warns "failed to send out heartbeat
# on time (exceeded the 100ms timeout for X, to PEER)" for any heartbeat to a follower later
# than 2 H, once per follower, X being the time past 2 H: counted here where X is 400 ms or
# more (T - 2 H).
ours_stalls=$({ grep -h "heartbeats held back" "$work"/ours/cluster-0/node-*.log 2> /dev/null || true; } | wc -l)
etcd_stalls=$({ grep -h "failed to send out heartbeat on time" "$work"/etcd-*.log 2> /dev/null || true; } \
    | sed -n -e 's/.*"exceeded-duration":"\([0-9.]*\)\([a-zµ]*\)".*/\1 \2/p' -e 's/.*timeout for \([0-9.]*\)\([a-zµ]*\),.*/\1 \2/p' \
    | awk '{ s = $1; if ($2 == "ms") s /= 1000; else if ($2 == "µs" || $2 == "us") s /= 1000000; else if ($2 == "ns") s /= 1e9; else if ($2 == "m") s *= 60 }
           s >= 0.4 { n++ } END { print n + 0 }')
echo "leaders' heartbeats held back an election timeout or more: ours ${ours_stalls:-0} times; etcd ${etcd_stalls:-0} warnings (one per follower)"
