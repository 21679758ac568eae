#!/usr/bin/env bash
# topics.sh — issue 14: "10,000 topics × 8 queues with producers spread over
# them: ≤ 10% throughput loss against one topic". The maximum rate of
# `mqbench produce -tps max` against a fresh mqd, first to one topic of
# QUEUES queues, then spread round-robin over TOPICS topics of QUEUES queues
# (mqbench -topics). Each case first creates its topics, sends two
# messages to every queue and waits for their consume-queue files (so that
# the measured run does not pay for creating 80,000 of them), then
# measures; the per-second rates and p99s are plotted into bench/out/, and
# the machine's CPU (every process and kernel thread) over the warmup and
# measured run is printed beside mqd's. mqd keeps at most
# maxOpenConsumeQueueFiles consume-queue files open (default: half of
# `ulimit -n`, at most 65,536; README "Consume-queue files"), closing idle
# ones: the script raises `ulimit -n` to the hard limit and says when that
# is below TOPICS × QUEUES (then queues reopen their files as they are
# used; "too many open files" in mqd's log, counted at the end, is a bug).
#
# Re-run:   bash bench/topics.sh                    (~5 min: 60 s per case, ~30 s to create 10,000 topics,
#                                                    ~30-45 s more until their 80,000 files are made)
#   TOPICS=10000 QUEUES=8 FLUSH=async DUR=60s WARM=5s SIZE=1k CONNS=4 bash bench/topics.sh
#   TOPICS=100 DUR=3s WARM=1s bash bench/topics.sh  (a quick check)
#   MQD=/tmp/mqd-old bash bench/topics.sh            (a prebuilt mqd, for A/B runs in one sitting)
#   MQD_ARGS="-c /tmp/broker.conf" bash bench/topics.sh  (extra mqd flags, e.g. a broker.conf to compare settings)
#   CASES=10000 bash bench/topics.sh                 (only the spread case; the ratio then is not printed)
#   PROFILE=10 bash bench/topics.sh                  (also a 10 s CPU profile of mqd per case, 5 s into
#                                                    the measured run, into bench/out/topics-<case>-<stamp>.pprof)
# Output also lands in bench/out/topics-*.txt. Loopback only, non-default
# ports; every process started here is stopped by its PID on exit.
set -euo pipefail
if [[ -n ${MQD:-} ]]; then # a prebuilt mqd, named relative to the caller's directory
	MQD=$(realpath "$MQD")
fi
cd "$(dirname "$0")/.."
TOPICS=${TOPICS:-10000}
QUEUES=${QUEUES:-8}
FLUSH=${FLUSH:-async}
DUR=${DUR:-60s}
WARM=${WARM:-5s}
SIZE=${SIZE:-1k}
CONNS=${CONNS:-4}
NS_PORT=${NS_PORT:-29878}
BROKER_PORT=${BROKER_PORT:-29931}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mqd-topics.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]+"${pids[@]}"}"; do
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p bench/out
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=bench/out/topics-$stamp.txt
exec > >(tee "$report") 2>&1

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(df -T "$tmp" | awk 'NR==2{print $2}') on $(df "$tmp" | awk 'NR==2{print $1}')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo '+dirty')   date: $(date -u +%FT%TZ)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) at start; --flush=$FLUSH, $SIZE bodies, $CONNS connections, warmup $WARM, measured $DUR; ulimit -n $(ulimit -n); mqd flags ${MQD_ARGS:-none}"
if [[ $(ulimit -n) != unlimited ]] && (($(ulimit -n) < TOPICS * QUEUES + 1000)); then
	echo "note: ulimit -n $(ulimit -n) < $TOPICS × $QUEUES consume queues + 1000: mqd keeps half that many consume-queue files open and reopens the others as they are used"
fi
if [[ -n ${MQD:-} ]]; then # A/B: a prebuilt mqd
	cp "$MQD" "$tmp/mqd"
	echo "mqd: $MQD (prebuilt, sha256 $(sha256sum "$MQD" | cut -c1-12); the commit above is this tree's)"
else
	go build -o "$tmp/mqd" ./cmd/mqd
fi
go build -o "$tmp/mqbench" ./cmd/mqbench

wait_port() { # port, seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 did not open" >&2
	return 1
}

stop_mqd() { # pid: SIGTERM, SIGKILL after 60 s
	local i
	kill "$1" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

declare -A tps
# shellcheck disable=SC2206 # CASES and MQD_ARGS are word lists
set -f # CASES and MQD_ARGS are split into words, never globbed
cases=(${CASES:-1 $TOPICS})
# shellcheck disable=SC2206
extra=(${MQD_ARGS:-})
set +f
for topics in "${cases[@]}"; do
	name=topics-$topics
	store=$tmp/store
	"$tmp/mqd" --flush="$FLUSH" --store "$store" --listen-port "$BROKER_PORT" --namesrv-port "$NS_PORT" \
		--broker-ip 127.0.0.1 "${extra[@]+"${extra[@]}"}" ${PROFILE:+--pprof "127.0.0.1:$((BROKER_PORT + 2))"} >"$tmp/mqd-$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_port "$BROKER_PORT" 60
	for ((i = 0; i < 600; i++)); do # serving once registered with the nameserver
		grep -q 'broker registered' "$tmp/mqd-$name.log" && break
		sleep 0.1
	done
	bench=("$tmp/mqbench" produce -n "127.0.0.1:$NS_PORT" -t spread -topics "$topics" -queues "$QUEUES" -size "$SIZE" -c "$CONNS")
	t=$(date +%s)
	"${bench[@]}" -v -tps max -count $((2 * topics * QUEUES)) -warmup 0s -duration 600s 2>&1 | grep -E '^created|^tps=' |
		sed "s/^/$name prime: /" || echo "$name prime: failed"
	echo "$name prime (create + two sends a queue) took $(($(date +%s) - t)) s"
	# The engine writes a queue's first entries to a new file (and syncs
	# its directories) at a checkpoint, at the latest the thorough one
	# (flushConsumeQueueThoroughInterval, 10 s) when the descriptor budget
	# is full: wait for every queue's file so the measured run does not
	# pay for creating them.
	t=$(date +%s)
	for ((i = 0; i < 120; i++)); do
		n=$({ find "$store/consumequeue" -type f 2>/dev/null || true; } | wc -l)
		((n >= topics * QUEUES)) && break
		sleep 0.5
	done
	echo "$name: $n consume-queue files on disk after $(($(date +%s) - t)) s more"
	((n >= topics * QUEUES)) || echo "$name: WARNING: measuring with $n of $((topics * QUEUES)) files made (gave up waiting)"
	if [[ -n ${PROFILE:-} ]]; then
		(sleep $((${WARM%s} + 5)) && curl -s -o "bench/out/$name-$stamp.pprof" \
			"http://127.0.0.1:$((BROKER_PORT + 2))/debug/pprof/profile?seconds=$PROFILE") &
		prof=$!
	fi
	cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	sys0=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8, $6, $9}' /proc/stat) # busy (user nice system irq softirq), iowait, steal
	line=$("${bench[@]}" -tps max -duration "$DUR" -warmup "$WARM" -series "bench/out/$name-$stamp.csv" | tail -1) || line=failed
	echo "$name  $line"
	echo "$name: mqd CPU over the measured run and its warmup: $(awk -v c0="$cpu0" -v hz="$(getconf CLK_TCK)" \
		'{printf "%.1f s", ($14 + $15 - c0) / hz}' "/proc/$pid/stat")"
	echo "$name: machine CPU over the measured run and its warmup (every process and kernel thread): $(awk -v s0="$sys0" -v hz="$(getconf CLK_TCK)" \
		'/^cpu /{split(s0, a, " "); printf "busy %.1f s, iowait %.1f s, steal %.1f s", ($2 + $3 + $4 + $7 + $8 - a[1]) / hz, ($6 - a[2]) / hz, ($9 - a[3]) / hz}' /proc/stat)"
	[[ -n ${PROFILE:-} ]] && wait "$prof"
	tps[$topics]=$(sed -n 's/^tps=\([0-9]*\).*/\1/p' <<<"$line")
	echo "$name: 'too many open files' in mqd's log: $(grep -c 'too many open files' "$tmp/mqd-$name.log" || true)"
	stop_mqd "$pid"
	rm -rf "$store"
done
for y in acked p99_ms; do
	[[ -f bench/out/topics-1-$stamp.csv && -f bench/out/topics-$TOPICS-$stamp.csv ]] || break # CASES left one out
	"$tmp/mqbench" plot -o "bench/out/topics-$y-$stamp.png" -y "$y" \
		-title "mqbench produce -tps max: 1 topic vs $TOPICS topics x $QUEUES queues ($y per second)" \
		"1 topic=bench/out/topics-1-$stamp.csv" "$TOPICS topics=bench/out/topics-$TOPICS-$stamp.csv" || true
done
if [[ -n ${tps[1]:-} && -n ${tps[$TOPICS]:-} && ${tps[1]} -gt 0 ]]; then
	echo "throughput $TOPICS topics / 1 topic: $(python3 -c "print(f'{${tps[$TOPICS]}/${tps[1]}:.3f}')")   (goal: ≥ 0.90)"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "report: $report; series and plots: bench/out/topics-*-$stamp.*"
