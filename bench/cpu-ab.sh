#!/usr/bin/env bash
# A/B of broker CPU per message (issue 14): two mqd binaries, alternated
# ROUNDS times in one sitting, each on a fresh store under the same
# mqbench load. Per run it prints the broker's CPU-µs per acknowledged
# message (utime+stime from /proc/PID/stat over the mqbench run, warmup
# included, divided by the messages sent in it) and its peak RSS (VmHWM)
# beside mqbench's summary.
#
#   bash bench/cpu-ab.sh A=/tmp/mqd-old B=/tmp/mqd-new
#
# Environment: ROUNDS (3), TPS (50k), DUR (20s), WARMUP (2s), FLUSH (sync),
# SIZE (1k), MODE (async; sync with TPS=max is a closed loop of
# synchronous senders), INFLIGHT (mqbench's -inflight per connection:
# 16 for sync, 4096 otherwise), STORE_ROOT (a temp dir), MQBENCH (built from
# this tree), PORT (20911; the nameserver listens on PORT+5),
# SETTLE (10: seconds to wait after deleting a run's store, so that the
# file system's work on the deleted GiBs does not land in the next run's
# first seconds; measured: 140-470 ms p99 in the first second without it).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3} TPS=${TPS:-50k} DUR=${DUR:-20s} WARMUP=${WARMUP:-2s}
FLUSH=${FLUSH:-sync} SIZE=${SIZE:-1k} MODE=${MODE:-async} PORT=${PORT:-20911} SETTLE=${SETTLE:-10}
INFLIGHT_ARGS=()
[ -z "${INFLIGHT:-}" ] || INFLIGHT_ARGS=(-inflight "$INFLIGHT")
NS_PORT=$((PORT + 5))
STORE_ROOT=${STORE_ROOT:-$(mktemp -d)}
MQBENCH=${MQBENCH:-}
if [ -z "$MQBENCH" ]; then
	MQBENCH=$STORE_ROOT/mqbench
	go build -o "$MQBENCH" ./cmd/mqbench
fi

declare -A BIN
for arg in "$@"; do
	BIN[${arg%%=*}]=${arg#*=}
done
[ ${#BIN[@]} -ge 1 ] || { echo "usage: $0 LABEL=/path/to/mqd ..." >&2; exit 2; }

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_one() { # label binary round
	local label=$1 bin=$2 round=$3 store="$STORE_ROOT/store-$1-$3"
	rm -rf "$store"
	"$bin" --store "$store" --flush="$FLUSH" --listen-port "$PORT" --namesrv-port "$NS_PORT" \
		--broker-ip 127.0.0.1 >"$STORE_ROOT/mqd-$label-$round.log" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do
		grep -q "namesrv: broker registered" "$STORE_ROOT/mqd-$label-$round.log" && break
		sleep 0.1
	done
	local t0 t1 out
	t0=$(ticks "$pid")
	out=$("$MQBENCH" produce -n "127.0.0.1:$NS_PORT" -size "$SIZE" -tps "$TPS" -mode "$MODE" ${INFLIGHT_ARGS[@]+"${INFLIGHT_ARGS[@]}"} \
		-duration "$DUR" -warmup "$WARMUP" | tail -1)
	t1=$(ticks "$pid")
	local hwm
	hwm=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" || true
	rm -rf "$store"
	sync
	sleep "$SETTLE"
	# messages over the whole run: the measured acks plus the warmup's at
	# the target rate, or at the measured rate under -tps max
	local acked tps_n warm_s dur_s
	acked=$(sed -n 's/.* acked=\([0-9]*\).*/\1/p' <<<"$out")
	tps_n=$(sed -n 's/.*target_tps=\([0-9]*\).*/\1/p' <<<"$out")
	dur_s=$(sed -n 's/.*duration_s=\([0-9.]*\).*/\1/p' <<<"$out")
	warm_s=$(sed 's/s$//' <<<"$WARMUP")
	[ -n "$tps_n" ] || tps_n=$(awk -v a="$acked" -v d="$dur_s" 'BEGIN { printf "%.0f", a / d }')
	awk -v l="$label" -v r="$round" -v d="$((t1 - t0))" -v hz="$hz" -v a="$acked" -v w="$((tps_n * warm_s))" -v o="$out" -v m="$hwm" \
		'BEGIN { printf "%s round %s: cpu_us_per_msg=%.2f cpu_s=%.2f rss_peak_mib=%s | %s\n", l, r, d / hz * 1e6 / (a + w), d / hz, m, o }'
}

for round in $(seq "$ROUNDS"); do
	for label in $(printf '%s\n' "${!BIN[@]}" | sort); do
		run_one "$label" "${BIN[$label]}" "$round"
	done
done
