#!/usr/bin/env bash
# recovery.sh — issue 14: "Recovery after kill -9 of a 10 GiB store ≤ 5 s".
# Writes a store of about SIZE with mqbench (1 KiB messages at the maximum
# rate, ASYNC_FLUSH unless FLUSH=sync), keeps a producer sending at 10k
# msg/s, kills the mqd process with SIGKILL (a real process, not an
# in-process close), restarts it on the same store and reports, from the
# restart: the engine open finishing (mqd's "store opened" log line, its
# `took`), the broker listening ("broker started"), the port accepting and
# the first send acknowledged through the nameserver (mqbench produce
# -count 1, retried every 50 ms). A time above the goal is a finding, not
# a failure: the script exits 0 whenever it measured.
#
# Re-run:   bash bench/recovery.sh                  (10 GiB: ~3-5 min to write, needs ~12 GiB free)
#   SIZE=256m bash bench/recovery.sh                (a quick check, ~30 s)
#   SIZE=10g STORE_DIR=/path/on/the/disk FLUSH=sync BODY=1k bash bench/recovery.sh
# Output also lands in bench/out/recovery-*.txt. Loopback only, non-default
# ports; every process started here is stopped by its PID on exit, and the
# store (in STORE_DIR, default a temp dir) is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-10g}
BODY=${BODY:-1k}
FLUSH=${FLUSH:-async}
NS_PORT=${NS_PORT:-29877}
BROKER_PORT=${BROKER_PORT:-29921}

to_bytes() { # 256m, 10g, 1k, 512 → bytes
	python3 -c "import sys; s=sys.argv[1].lower().rstrip('ib'); m={'k':1<<10,'m':1<<20,'g':1<<30}.get(s[-1:],1); print(int(float(s.rstrip('kmg'))*m))" "$1"
}
size_bytes=$(to_bytes "$SIZE")
body_bytes=$(to_bytes "$BODY")
# a commit-log record is the body plus ~230 bytes of header, topic and
# properties (commitlog/FORMAT.md); the actual size is reported at the end
count=$((size_bytes / (body_bytes + 230)))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mqd-recovery.XXXXXX")
store=${STORE_DIR:-$tmp}/store-recovery
pids=()
cleanup() {
	for pid in "${pids[@]+"${pids[@]}"}"; do
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$store" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p bench/out
report=bench/out/recovery-$(date -u +%Y%m%dT%H%M%SZ).txt
exec > >(tee "$report") 2>&1

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(df -T "${STORE_DIR:-$tmp}" | awk 'NR==2{print $2}') on $(df "${STORE_DIR:-$tmp}" | awk 'NR==2{print $1}')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo '+dirty')   date: $(date -u +%FT%TZ)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) at start; store: $SIZE of $BODY messages ($count), --flush=$FLUSH"
go build -o "$tmp/mqd" ./cmd/mqd
go build -o "$tmp/mqbench" ./cmd/mqbench

wait_port() { # port, seconds
	local i
	for ((i = 0; i < $2 * 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.01
	done
	echo "port $1 did not open" >&2
	return 1
}
start_mqd() { # log file; sets pid
	"$tmp/mqd" --flush="$FLUSH" --store "$store" --listen-port "$BROKER_PORT" --namesrv-port "$NS_PORT" \
		--broker-ip 127.0.0.1 >"$1" 2>&1 &
	pid=$!
	pids+=("$pid")
}
answered() { # one send acknowledged through the nameserver
	timeout 10 "$tmp/mqbench" produce -n "127.0.0.1:$NS_PORT" -t recovery -tps 1000 -count 1 -warmup 0s \
		-timeout 1s -size "$BODY" 2>/dev/null | tail -1 | grep -q ' acked=1 '
}

# ---- fill -------------------------------------------------------------------
start_mqd "$tmp/mqd-fill.log"
wait_port "$BROKER_PORT" 60
until answered; do sleep 0.2; done
t=$(date +%s)
# -count at -tps max stops at -duration at the latest: allow 5k msg/s
"$tmp/mqbench" produce -n "127.0.0.1:$NS_PORT" -t recovery -tps max -count "$count" -warmup 0s -size "$BODY" \
	-duration "$((count / 5000 + 10))s" | tail -1 | sed 's/^/fill: /'
echo "fill took $(($(date +%s) - t)) s"

# ---- kill -9 under load ---------------------------------------------------------
"$tmp/mqbench" produce -n "127.0.0.1:$NS_PORT" -t recovery -tps 10k -duration 60s -warmup 0s -size "$BODY" \
	>"$tmp/load.log" 2>&1 &
load=$!
pids+=("$load")
sleep 3
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "mqd killed with SIGKILL under a 10k msg/s load"
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true

# ---- restart ----------------------------------------------------------------------
t0=$(date +%s.%N)
start_mqd "$tmp/mqd-restart.log"
wait_port "$BROKER_PORT" 600
t_port=$(date +%s.%N)
until answered; do sleep 0.05; done
t_answer=$(date +%s.%N)
python3 - "$tmp/mqd-restart.log" "$t0" "$t_port" "$t_answer" "$SIZE" <<'PY'
import re, sys
from datetime import datetime
log, t0, t_port, t_answer, size = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
def at(msg):
    for line in open(log):
        if f'msg="{msg}"' in line:
            m = re.match(r'time=(\S+)', line)
            return line, datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() - t0
    return None, None
opened, t_open = at("store opened")
_, t_started = at("broker started")
running, _ = at("failover: broker running")
took = re.search(r'took=(\S+)', opened).group(1) if opened else "?"
end = re.search(r'logEnd=(\d+)', running or "")
print(f"commit log after recovery: {int(end.group(1))/2**30:.2f} GiB" if end else "commit log end: not logged")
print(f"restart → engine open finished: {t_open:.2f} s (engine.Open took {took})" if t_open is not None else "store opened: not logged")
print(f"restart → broker started (listening): {t_started:.2f} s" if t_started is not None else "broker started: not logged")
print(f"restart → port accepting connections (listen(2); served from 'broker started'): {t_port - t0:.2f} s")
print(f"restart → first send acknowledged via the nameserver: {t_answer - t0:.2f} s   (goal for a 10 GiB store: ≤ 5 s)")
PY
grep -E 'level=(WARN|ERROR)' "$tmp/mqd-restart.log" | head -5 | sed 's/^/restart log: /' || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "report: $report"
