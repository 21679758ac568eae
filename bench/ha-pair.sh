#!/usr/bin/env bash
# ha-pair.sh — issue 12 at the broker level: mqbench against a lone
# SYNC_FLUSH master, a SYNC_MASTER with one slave, and an ASYNC_MASTER with
# one slave, each a fresh pair of mqd processes (master with the embedded
# nameserver, slave as `mqd broker` on its own store and ports), alternated
# ROUNDS times in one sitting. Per run it prints mqbench's summary beside
# the CPU-µs per acknowledged message of the master, of the slave, and of
# both (utime+stime from /proc over the mqbench run, warmup included).
# At the end it prints, per binary and rate, each replicated mode's
# throughput and p99 against the lone master's as ratios of the means over
# the rounds, beside each round's throughput ratio (the run lines are kept
# in STORE_ROOT/results.txt).
#
#   bash bench/ha-pair.sh                        RATES="20k max", 3 rounds
#   ROUNDS=5 RATES="50k" DUR=30s bash bench/ha-pair.sh
#   MODES="lone SYNC_MASTER" A=/tmp/mqd-old B=/tmp/mqd-new bash bench/ha-pair.sh   A/B of two builds
#
# Environment: ROUNDS (3), RATES ("20k max"), DUR (20s), WARMUP (2s),
# SIZE (1k), MODE (mqbench -mode, async), FLUSH (the master's
# flushDiskType, sync), SLAVE_FLUSH (the slave's, async: it acknowledges
# bytes written to its files, as a Java slave acknowledges bytes in its
# page cache; sync makes it acknowledge only after its fdatasync),
# MODES ("lone SYNC_MASTER ASYNC_MASTER"),
# SEG (mappedFileSizeCommitLog, the default 1 GiB), PORT (21911: master
# PORT, its HA PORT+1, nameserver PORT+5, slave PORT+10), STORE_ROOT,
# PROFILE (unset: when set, e.g. PROFILE=10, both processes serve pprof on
# PORT+20 and PORT+21 and a CPU profile of that many seconds is taken from
# each, starting 3 s after the warmup, into STORE_ROOT/<run>-{master,slave}.pprof),
# SETTLE (10: seconds to wait after deleting a run's stores, so that the
# file system's work on the deleted GiBs does not land in the next run's
# first seconds; measured: 140-470 ms p99 in the first second without it).
# Without A/B the mqd built from this tree is used. Loopback only; every
# process is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3} RATES=${RATES:-"20k max"} DUR=${DUR:-20s} WARMUP=${WARMUP:-2s}
SIZE=${SIZE:-1k} MODE=${MODE:-async} FLUSH=${FLUSH:-sync} SLAVE_FLUSH=${SLAVE_FLUSH:-async} PORT=${PORT:-21911}
SETTLE=${SETTLE:-10}
MODES=${MODES:-"lone SYNC_MASTER ASYNC_MASTER"} SEG=${SEG:-}
NS_PORT=$((PORT + 5)) SLAVE_PORT=$((PORT + 10))
STORE_ROOT=${STORE_ROOT:-$(mktemp -d)}
mkdir -p "$STORE_ROOT"
go build -o "$STORE_ROOT/mqbench" ./cmd/mqbench
declare -A BIN=()
[ -n "${A:-}" ] && BIN[A]=$A
[ -n "${B:-}" ] && BIN[B]=$B
if [ ${#BIN[@]} -eq 0 ]; then
	go build -o "$STORE_ROOT/mqd" ./cmd/mqd
	BIN[head]=$STORE_ROOT/mqd
fi

pids=()
cleanup() {
	for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
flushType() { [ "$1" = sync ] && echo SYNC_FLUSH || echo ASYNC_FLUSH; }

waitLog() { # file pattern
	for _ in $(seq 150); do
		grep -q "$2" "$1" && return 0
		sleep 0.1
	done
	echo "timed out waiting for '$2' in $1" >&2
	tail -20 "$1" >&2
	return 1
}

profile() { # run-dir slave-pid: CPU profiles of the run's processes
	local base=$STORE_ROOT/$(basename "$1")
	sleep $(($(sed 's/s$//' <<<"$WARMUP") + 3))
	curl -s -o "$base-master.pprof" "http://127.0.0.1:$((PORT + 20))/debug/pprof/profile?seconds=$PROFILE" &
	[ -n "$2" ] && curl -s -o "$base-slave.pprof" "http://127.0.0.1:$((PORT + 21))/debug/pprof/profile?seconds=$PROFILE" &
	wait
}

run_one() { # label binary mode rate round
	local label=$1 bin=$2 mode=$3 rate=$4 round=$5
	local dir="$STORE_ROOT/$label-$mode-$rate-$round"
	rm -rf "$dir" && mkdir -p "$dir"
	local role=$mode
	[ "$mode" = lone ] && role=ASYNC_MASTER # no slave wait: its flush alone
	{
		echo "brokerRole=$role"
		echo "flushDiskType=$(flushType "$FLUSH")"
		echo "haListenPort=$((PORT + 1))"
		[ -n "$SEG" ] && echo "mappedFileSizeCommitLog=$SEG"
	} >"$dir/master.conf"
	"$bin" -c "$dir/master.conf" --store "$dir/master" --listen-port "$PORT" \
		--namesrv-port "$NS_PORT" --broker-ip 127.0.0.1 ${PROFILE:+--pprof "127.0.0.1:$((PORT + 20))"} \
		>"$dir/master.log" 2>&1 &
	local mpid=$! spid=
	pids+=("$mpid")
	waitLog "$dir/master.log" "namesrv: broker registered"
	if [ "$mode" != lone ]; then
		{
			echo "brokerRole=SLAVE"
			echo "brokerId=1"
			echo "flushDiskType=$(flushType "$SLAVE_FLUSH")"
			echo "haMasterAddress=127.0.0.1:$((PORT + 1))"
			echo "haListenPort=$((SLAVE_PORT + 1))"
			[ -n "$SEG" ] && echo "mappedFileSizeCommitLog=$SEG"
		} >"$dir/slave.conf"
		"$bin" broker -c "$dir/slave.conf" --store "$dir/slave" --listen-port "$SLAVE_PORT" \
			--namesrv "127.0.0.1:$NS_PORT" --broker-ip 127.0.0.1 ${PROFILE:+--pprof "127.0.0.1:$((PORT + 21))"} \
			>"$dir/slave.log" 2>&1 &
		spid=$!
		pids+=("$spid")
		waitLog "$dir/master.log" "ha: slave connected"
	fi
	local m0 m1 s0=0 s1=0 out
	m0=$(ticks "$mpid")
	[ -n "$spid" ] && s0=$(ticks "$spid")
	[ -n "${PROFILE:-}" ] && profile "$dir" "$spid" &
	out=$("$STORE_ROOT/mqbench" produce -n "127.0.0.1:$NS_PORT" -size "$SIZE" -tps "$rate" -mode "$MODE" \
		-duration "$DUR" -warmup "$WARMUP" | tail -1)
	m1=$(ticks "$mpid")
	[ -n "$spid" ] && s1=$(ticks "$spid")
	kill "$mpid" ${spid:+"$spid"} 2>/dev/null || true
	wait "$mpid" 2>/dev/null || true
	[ -n "$spid" ] && { wait "$spid" 2>/dev/null || true; }
	rm -rf "$dir/master" "$dir/slave"
	sync
	sleep "$SETTLE"
	local acked tps_n warm_s sent
	acked=$(sed -n 's/.* acked=\([0-9]*\).*/\1/p' <<<"$out")
	tps_n=$(sed -n 's/.*target_tps=\([0-9]*\).*/\1/p' <<<"$out")
	warm_s=$(sed 's/s$//' <<<"$WARMUP")
	# messages over the whole run: the measured acks plus the warmup's (at
	# the target rate, or the measured rate for -tps max)
	sent=$(awk -v a="$acked" -v t="$tps_n" -v w="$warm_s" -v d="$(sed 's/s$//' <<<"$DUR")" \
		'BEGIN { r = (t > 0) ? t : a / d; printf "%d", a + r * w }')
	awk -v l="$label" -v m="$mode" -v r="$round" -v rate="$rate" -v mt="$((m1 - m0))" -v st="$((s1 - s0))" \
		-v hz="$hz" -v n="$sent" -v o="$out" \
		'BEGIN { printf "%s %s %s round %s: cpu_us/msg master=%.2f slave=%.2f both=%.2f | %s\n", l, m, rate, r,
			mt / hz * 1e6 / n, st / hz * 1e6 / n, (mt + st) / hz * 1e6 / n, o }' | tee -a "$results"
}

# run_one runs in this shell (not in a pipe's subshell), so that the pids it
# records are the ones cleanup stops.
results=$STORE_ROOT/results.txt
: >"$results"
for round in $(seq "$ROUNDS"); do
	for rate in $RATES; do
		for mode in $MODES; do
			for label in $(printf '%s\n' "${!BIN[@]}" | sort); do
				run_one "$label" "${BIN[$label]}" "$mode" "$rate" "$round"
			done
		done
	done
done

# Summary: each replicated mode's throughput against the lone master's of
# the same binary, rate and round (one run's ratio ranged 0.70-1.22 over
# twelve rounds on 2026-12-06; the ratio of the means over alternated
# rounds is the figure to quote), and the p99 ratio likewise.
awk '
	{ key = $1 " " $3; r = $5; sub(":", "", r)
	  tps = $0; sub(/.*[|] tps=/, "", tps); sub(/ .*/, "", tps)
	  p99 = $0; sub(/.* p99_ms=/, "", p99); sub(/ .*/, "", p99)
	  T[key, $2, r] = tps; P[key, $2, r] = p99; modes[$2]; keys[key]; if (r + 0 > maxr) maxr = r + 0 }
	END {
		for (k in keys) for (m in modes) {
			if (m == "lone") continue
			line = ""; st = 0; sl = 0; pt = 0; pl = 0; n = 0
			for (r = 1; r <= maxr; r++) if ((k, m, r) in T && (k, "lone", r) in T && T[k, "lone", r] > 0) {
				line = line sprintf(" %.2f", T[k, m, r] / T[k, "lone", r])
				st += T[k, m, r]; sl += T[k, "lone", r]; pt += P[k, m, r]; pl += P[k, "lone", r]; n++
			}
			if (n > 0)
				printf "%s %s against lone, %d rounds: throughput ratio of the means %.3f (rounds:%s), p99 ratio of the means %.2f\n", k, m, n, st / sl, line, (pl > 0 ? pt / pl : 0)
			else
				printf "%s %s: no lone run of the same round to compare with (MODES without lone?)\n", k, m
		}
	}' "$results" | sort
echo "run lines: $results"
