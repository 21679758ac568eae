#!/usr/bin/env bash
# side-by-side.sh — one sitting, one machine: the disk's own limits (fio), mqd
# with --flush=sync and --flush=async under mqbench, and NATS JetStream (file
# storage, default and `sync_interval: always`) under an equivalent open-loop
# 1 KiB publisher, at fixed rates 10k, 50k, 100k msg/s and at the maximum;
# Apache RocketMQ 4.9.7 (namesrv + broker from the Maven jars, SYNC_FLUSH and
# ASYNC_FLUSH) under the same mqbench load; then the figures side by side and
# as ratios.
#
# Every run also writes its per-second figures (mqbench -series; the NATS
# publisher writes the same CSV columns), and each rate gets one PNG of the
# per-second p99 of every system at that rate (mqbench plot, log scale).
#
# Re-run:   bash bench/side-by-side.sh            (about 10 minutes)
#   DUR=10s WARM=2s RATES="10k 50k 100k max" SIZE=1k bash bench/side-by-side.sh
#   DUR=60s RATES="10k 50k 100k" NO_FIO=1 bash bench/side-by-side.sh   issue 14's 60 s sitting (~25 min)
#   NO_FIO=1 / NO_MQD=1 / NO_NATS=1 / NO_JAVA=1 skip those parts.
#   JAVA_HEAP=2g sets the Java broker's -Xms/-Xmx (and its direct memory).
#   SETTLE=10 is how long to wait after deleting a run's store (default 10 s),
#   so that the file system's work on the deleted GiBs does not land in the
#   next run's first seconds (measured: 140-470 ms p99 in the first second).
# Output also lands in bench/out/side-by-side-STAMP.txt; the series in
# bench/out/side-by-side-STAMP/SYSTEM-RATE.csv, the plots in
# bench/out/side-by-side-STAMP/p99-RATE.png (bench/out is not committed).
# Needs: go; fio (apt-get install fio) unless NO_FIO=1; the Go module proxy for
# nats-server v2.12.1 and nats.go v1.46.1 (installed into the temp dir, not into
# this repo's go.mod); for the Java broker java 17+ and mvn with Maven Central
# (the jars come from compat/java/pom.xml's `mixed` profile). Every server listens on loopback only, on non-default
# ports; every process started here is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
WARM=${WARM:-2s}
RATES=${RATES:-"10k 50k 100k max"}
SIZE=${SIZE:-1k}
CONNS=${CONNS:-4}
NS_PORT=${NS_PORT:-29876}
BROKER_PORT=${BROKER_PORT:-29911}
NATS_PORT=${NATS_PORT:-24222}
JNS_PORT=${JNS_PORT:-29976}
JBROKER_PORT=${JBROKER_PORT:-30911} # and 30909 (VIP channel), 30912 (HA)
JAVA_HEAP=${JAVA_HEAP:-2g}
SETTLE=${SETTLE:-10}
NATS_SERVER_VERSION=v2.12.1
NATS_GO_VERSION=v1.46.1 # the nats.go that nats-server v2.12.1 itself requires

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mqd-sbs.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]+"${pids[@]}"}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]+"${pids[@]}"}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
# settle waits after a run's store was deleted (SETTLE above).
settle() {
	sync
	sleep "$SETTLE"
}
trap 'exit 130' INT TERM
mkdir -p bench/out
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=bench/out/side-by-side-$stamp.txt
series=bench/out/side-by-side-$stamp # SYSTEM-RATE.csv, p99-RATE.png
mkdir -p "$series"
results=$tmp/results.txt # system rate key=value...
: >"$results"
exec > >(tee "$report") 2>&1

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(df -T "$tmp" | awk 'NR==2{print $2}') on $(df "$tmp" | awk 'NR==2{print $1}')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo '+dirty')   date: $(date -u +%FT%TZ)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
echo "load: rates [$RATES] msg/s, $SIZE bodies, $CONNS connections, warmup $WARM, measured $DUR per point; open loop, latency from the intended send time"

# ---- disk limits ------------------------------------------------------------
if [[ -z ${NO_FIO:-} ]] && command -v fio >/dev/null; then
	fio_run() { # name, fio args...
		local name=$1; shift
		timeout 60 fio --name="$name" --filename="$tmp/fio.$name" --size=512M --runtime=8 --time_based \
			--group_reporting --output-format=json "$@" >"$tmp/fio-$name.json"
		rm -f "$tmp/fio.$name"
	}
	fio_run sync1 --rw=write --bs=1k --ioengine=psync --fdatasync=1
	fio_run sync64 --rw=write --bs=1k --ioengine=psync --fdatasync=64
	fio_run buffered --rw=write --bs=64k --ioengine=psync
	python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def job(n): return json.load(open(f"{d}/fio-{n}.json"))["jobs"][0]
for n, every in (("sync1", 1), ("sync64", 64)):
    j = job(n)
    p = j.get("sync", {}).get("lat_ns", {}).get("percentile", {})
    print(f"fio 1 KiB writes + fdatasync every {every:>2}: {j['write']['iops']:9.0f} writes/s  fdatasync p50 {p.get('50.000000',0)/1e3:6.0f} us p99 {p.get('99.000000',0)/1e3:6.0f} us")
print(f"fio buffered 64 KiB writes: {job('buffered')['write']['bw_bytes']/1e6:8.0f} MB/s")
PY
else
	echo "fio: skipped"
fi

# ---- builds -------------------------------------------------------------------
go build -o "$tmp/mqd" ./cmd/mqd
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
stop_pid() { # pid: stop it and forget it
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=() p
	for p in "${pids[@]+"${pids[@]}"}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	pids=("${keep[@]+"${keep[@]}"}")
}
record() { # system rate summary-line
	echo "$1 $2 $3" >>"$results"
}
wait_registered() { # mqd log file: mqd serves once its broker registered with the nameserver
	local i
	for ((i = 0; i < 600; i++)); do
		grep -q 'broker registered' "$1" && return 0
		sleep 0.1
	done
	echo "mqd did not register with its nameserver within 60 s" >&2
	return 1
}

# ---- mqd ------------------------------------------------------------------------
# Every point gets a fresh server and store, so one point's backlog does
# not spill into the next.
for flush in ${NO_MQD:+none} sync async; do
	[[ $flush == none ]] && break
	for rate in $RATES; do
		store=$tmp/store-$flush
		"$tmp/mqd" --flush="$flush" --store "$store" --listen-port "$BROKER_PORT" --namesrv-port "$NS_PORT" \
			--broker-ip 127.0.0.1 >"$tmp/mqd-$flush-$rate.log" 2>&1 &
		pid=$!
		pids+=("$pid")
		wait_port "$NS_PORT" 20
		wait_port "$BROKER_PORT" 30
		wait_registered "$tmp/mqd-$flush-$rate.log"
		line=$(timeout 180 "$tmp/mqbench" produce -n "127.0.0.1:$NS_PORT" -t "sbs_$flush" -size "$SIZE" -tps "$rate" \
			-c "$CONNS" -mode async -duration "$DUR" -warmup "$WARM" -series "$series/mqd-$flush-$rate.csv" | tail -1) || line="failed"
		echo "mqd-$flush  rate=$rate  $line"
		record "mqd-$flush" "$rate" "$line"
		stop_pid "$pid"
		rm -rf "$store"
		settle
	done
done

# ---- NATS JetStream ---------------------------------------------------------------
if [[ -z ${NO_NATS:-} ]]; then
	export GOFLAGS=-mod=mod
	GOBIN=$tmp/bin go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
	pub=$tmp/natspub-src
	mkdir -p "$pub"
	cat >"$pub/main.go" <<'GO'
// natspub: an open-loop JetStream publisher equivalent to mqbench produce:
// publish i is due at start + i/rate; one wake-up publishes what is due within
// the slack on the next connection in rotation; latency runs from the earlier
// of the intended and the actual publish time to the PubAck; at most
// -inflight unacknowledged publishes per connection (a full window delays the
// publish, which counts as latency). Prints mqbench's summary line and, with
// -series, mqbench's per-second CSV (seconds by completion; sent by issue).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"
)

// pending is one publish awaiting its PubAck.
type pending struct {
	f        jetstream.PubAckFuture
	origin   int64
	measured bool
}

func main() {
	url := flag.String("url", "nats://127.0.0.1:4222", "server")
	rateS := flag.String("rate", "10k", "msgs/s or max")
	size := flag.Int("size", 1024, "body bytes")
	conns := flag.Int("c", 4, "connections")
	inflight := flag.Int("inflight", 4096, "unacknowledged publishes per connection")
	dur := flag.Duration("duration", 10*time.Second, "measured phase")
	warm := flag.Duration("warmup", 2*time.Second, "warmup")
	slack := flag.Duration("slack", 200*time.Microsecond, "wake-up window")
	seriesPath := flag.String("series", "", "per-second CSV file")
	flag.Parse()
	rate := parseRate(*rateS)
	ctx := context.Background()
	var jss []jetstream.JetStream
	for range *conns {
		nc, err := nats.Connect(*url)
		must(err)
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(*inflight))
		must(err)
		jss = append(jss, js)
	}
	_, err := jss[0].CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage})
	must(err)
	body := make([]byte, *size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	start := now() + int64(50*time.Millisecond)
	mStart := start + int64(*warm)
	end := mStart + int64(*dur)
	var total, warmN int64
	if rate > 0 {
		warmN = int64(float64(rate) * warm.Seconds())
		total = warmN + int64(float64(rate)*dur.Seconds())
	}
	due := func(i int64) int64 { return start + i/rate*1e9 + i%rate*1e9/rate }
	if rate > 0 {
		end = due(total)
	}
	hardEnd := end + int64(5*time.Second) // nothing is published after this; the rest counts as unsent
	var mu sync.Mutex
	var lats []int64
	var sent, errs, last int64
	perSec := map[int64]*second{} // per-second figures, under mu
	sec := func(t int64) *second {
		k := (t-start)/int64(time.Second) + 1
		if perSec[k] == nil {
			perSec[k] = &second{}
		}
		return perSec[k]
	}
	var wg sync.WaitGroup
	// one collector per connection waits for the acks in publish order
	// (a stream's acks on one connection arrive in order)
	queues := make([]chan pending, len(jss))
	for q := range queues {
		queues[q] = make(chan pending, 2**inflight)
		wg.Add(1)
		go func(ch chan pending) {
			defer wg.Done()
			for p := range ch {
				ok := false
				select {
				case <-p.f.Ok():
					ok = true
				case <-p.f.Err():
				case <-time.After(10 * time.Second):
				}
				d := now()
				mu.Lock()
				if s := sec(d); ok {
					s.lats = append(s.lats, d-p.origin)
				} else {
					s.errs++
				}
				mu.Unlock()
				if p.measured {
					mu.Lock()
					if ok {
						lats = append(lats, d-p.origin)
					} else {
						errs++
					}
					last = max(last, d)
					mu.Unlock()
				}
			}
		}(queues[q])
	}
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	sleepUntil := func(t int64) {
		for d := t - now(); d > 0; d = t - now() {
			ts := unix.NsecToTimespec(d)
			unix.Nanosleep(&ts, nil)
		}
	}
	sleepUntil(start)
	var i int64
	for w := 0; ; w = (w + 1) % len(jss) {
		t := now()
		if t > hardEnd {
			break
		}
		if rate > 0 {
			if i >= total {
				break
			}
			if next := due(i); next > t+int64(*slack) {
				sleepUntil(next)
				w--
				continue
			}
		} else if t >= end {
			break
		}
		for k := 0; k < 64; k++ {
			var intended int64
			measured := false
			if rate > 0 {
				if i >= total || due(i) > t+int64(*slack) {
					break
				}
				intended, measured = due(i), i >= warmN
			} else {
				intended, measured = now(), now() >= mStart
			}
			f, err := jss[w].PublishAsync("bench.x", body) // blocks while the window is full
			t = now()
			mu.Lock()
			sec(t).sent++
			mu.Unlock()
			origin := min(intended, t)
			if rate <= 0 {
				origin = t // unthrottled: from the publish, window waits excluded (as mqbench)
			}
			i++
			if measured {
				sent++
			}
			if err != nil {
				if measured {
					mu.Lock()
					errs++
					mu.Unlock()
				}
				continue
			}
			queues[w] <- pending{f: f, origin: origin, measured: measured}
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	slices.Sort(lats)
	pct := func(q float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		k := int(q*float64(len(lats))+0.5) - 1
		return float64(lats[max(0, min(k, len(lats)-1))]) / 1e6
	}
	if rate > 0 && total-warmN > sent {
		errs += total - warmN - sent // unsent
	}
	secs := float64(last-mStart) / 1e9
	tps := 0.0
	if secs > 0 {
		tps = float64(len(lats)) / secs
	}
	if *seriesPath != "" {
		must(writeSeries(*seriesPath, perSec, start, mStart))
	}
	fmt.Printf("tps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%d sent=%d acked=%d duration_s=%.2f target_tps=%s\n",
		tps, pct(0.5), pct(0.99), pct(0.999), pct(1), errs, sent, len(lats), secs, *rateS)
}

// second is one second of the run (mqbench's -series row).
type second struct {
	sent, errs int64
	lats       []int64
}

// writeSeries writes mqbench's -series CSV: second,sent,acked,received,
// errors,p50_ms,p99_ms,p999_ms,max_ms,phase.
func writeSeries(path string, secs map[int64]*second, start, mStart int64) error {
	var b strings.Builder
	b.WriteString("second,sent,acked,received,errors,p50_ms,p99_ms,p999_ms,max_ms,phase\n")
	var last int64
	for k := range secs {
		last = max(last, k)
	}
	for k := int64(1); k <= last; k++ {
		s := secs[k]
		if s == nil {
			s = &second{}
		}
		slices.Sort(s.lats)
		pct := func(q float64) float64 {
			if len(s.lats) == 0 {
				return 0
			}
			i := int(q*float64(len(s.lats))+0.5) - 1
			return float64(s.lats[max(0, min(i, len(s.lats)-1))]) / 1e6
		}
		phase := "measured"
		if start+k*int64(time.Second) <= mStart {
			phase = "warmup"
		}
		fmt.Fprintf(&b, "%d,%d,%d,0,%d,%.3f,%.3f,%.3f,%.3f,%s\n", k, s.sent, len(s.lats), s.errs,
			pct(0.5), pct(0.99), pct(0.999), pct(1), phase)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func parseRate(s string) int64 {
	s = strings.ToLower(s)
	if s == "max" {
		return 0
	}
	m := int64(1)
	if strings.HasSuffix(s, "k") {
		m, s = 1000, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	must(err)
	return n * m
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "natspub:", err)
		os.Exit(1)
	}
}
GO
	(cd "$pub" && go mod init natspub && go get "github.com/nats-io/nats.go@$NATS_GO_VERSION" golang.org/x/sys &&
		go mod tidy && go build -o "$tmp/natspub" .) >"$tmp/natspub-build.log" 2>&1 || {
		cat "$tmp/natspub-build.log"
		exit 1
	}
	size_bytes=$(python3 -c "s='$SIZE'.lower(); print(int(s[:-1])*1024 if s.endswith('k') else int(s[:-1])*1048576 if s.endswith('m') else int(s))")
	for sync in default always; do
		for rate in $RATES; do
			store=$tmp/js-$sync
			conf=$tmp/nats-$sync.conf
			{
				echo "listen: 127.0.0.1:$NATS_PORT"
				echo "jetstream { store_dir: \"$store\""
				[[ $sync == always ]] && echo "  sync_interval: always"
				echo "}"
			} >"$conf"
			"$tmp/bin/nats-server" -c "$conf" >"$tmp/nats-$sync-$rate.log" 2>&1 &
			pid=$!
			pids+=("$pid")
			wait_port "$NATS_PORT" 20
			line=$(timeout 180 "$tmp/natspub" -url "nats://127.0.0.1:$NATS_PORT" -rate "$rate" -size "$size_bytes" \
				-c "$CONNS" -duration "$DUR" -warmup "$WARM" -series "$series/nats-$sync-$rate.csv" | tail -1) || line="failed"
			echo "nats-$sync  rate=$rate  $line"
			record "nats-$sync" "$rate" "$line"
			stop_pid "$pid"
			rm -rf "$store"
			settle
		done
	done
fi

# ---- Apache RocketMQ 4.9.7 (the Java broker) ------------------------------------------
# Started as compat/java's JavaRocketMQ does (NamesrvStartup, BrokerStartup): the server classpath
# from the Maven jars, a ROCKETMQ_HOME with the logback file the startup class
# needs, JDK-17 --add-opens for the 4.9.7 mmap code. The heap: JAVA_HEAP (2g
# default: runbroker.sh's 8g would not fit beside the other servers on a
# small machine; G1 as runbroker.sh). The Java broker's send-queue shedding
# is relaxed (waitTimeMillsInSendQueue, osPageCacheBusyTimeOutMills) as in
# compat/java, so that a loaded machine measures the store, not the shedding;
# mqd never sheds either.
if [[ -z ${NO_JAVA:-} ]]; then
	cp=$tmp/rocketmq-server.classpath
	mvn -q -B -Dstyle.color=never -Pmixed -f compat/java/pom.xml dependency:build-classpath \
		-Dmdep.includeScope=test -Dmdep.outputFile="$cp" >"$tmp/mvn-cp.log" 2>&1 || {
		cat "$tmp/mvn-cp.log"
		exit 1
	}
	jhome=$tmp/java-home
	mkdir -p "$jhome/conf"
	for f in logback_namesrv.xml logback_broker.xml; do
		cat >"$jhome/conf/$f" <<XML
<configuration>
  <appender name="F" class="ch.qos.logback.core.FileAppender">
    <file>$tmp/java-${f%.xml}.log</file>
    <encoder><pattern>%d %-5level %logger{20} - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="F"/></root>
</configuration>
XML
	done
	jrun() { # heap main args...: a Java RocketMQ server in the background; sets pid
		local heap=$1 main=$2
		shift 2
		ROCKETMQ_HOME=$jhome java -Xms"$heap" -Xmx"$heap" -XX:MaxDirectMemorySize="$heap" -XX:+UseG1GC \
			-Duser.home="$jhome" -Drocketmq.home.dir="$jhome" -Dtls.server.mode=disabled \
			-Djava.security.egd=file:/dev/./urandom \
			--add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
			--add-exports java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/jdk.internal.ref=ALL-UNNAMED \
			--add-exports java.base/jdk.internal.ref=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED \
			-cp "$(cat "$cp")" "$main" "$@" &
		pid=$!
		pids+=("$pid")
	}
	printf 'listenPort=%s\nrocketmqHome=%s\nkvConfigPath=%s\n' "$JNS_PORT" "$jhome" "$jhome/kvConfig.json" >"$jhome/namesrv.properties"
	jrun 256m org.apache.rocketmq.namesrv.NamesrvStartup -c "$jhome/namesrv.properties" >"$tmp/java-namesrv.out" 2>&1
	jns=$pid
	wait_port "$JNS_PORT" 60
	for flush in SYNC_FLUSH ASYNC_FLUSH; do
		for rate in $RATES; do
			store=$tmp/java-store
			cat >"$jhome/broker.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=java-bench
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=$flush
brokerIP1=127.0.0.1
listenPort=$JBROKER_PORT
namesrvAddr=127.0.0.1:$JNS_PORT
rocketmqHome=$jhome
storePathRootDir=$store
storePathCommitLog=$store/commitlog
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
waitTimeMillsInSendQueue=5000
osPageCacheBusyTimeOutMills=5000
CONF
			jrun "$JAVA_HEAP" org.apache.rocketmq.broker.BrokerStartup -c "$jhome/broker.conf" >"$tmp/java-$flush-$rate.out" 2>&1
			wait_port "$JBROKER_PORT" 120
			sleep 2 # first registration with the nameserver
			# A fresh JVM runs interpreted: 5 s at 1k msg/s first (another topic),
			# so that the point measures a warm broker. Without it, on a loaded
			# machine the cold broker falls more than the 3 s send timeout behind
			# and, the open-loop load refilling its queue, never catches up.
			timeout 60 "$tmp/mqbench" produce -n "127.0.0.1:$JNS_PORT" -t "sbs_jit_$rate" -size "$SIZE" -tps 1k \
				-c "$CONNS" -mode async -duration 5s -warmup 0s >"$tmp/java-jit-$flush-$rate.log" 2>&1 || true
			name=java-$(tr 'A-Z' 'a-z' <<<"${flush%_FLUSH}")
			line=$(timeout 180 "$tmp/mqbench" produce -n "127.0.0.1:$JNS_PORT" -t "sbs_${name}_$rate" -size "$SIZE" -tps "$rate" \
				-c "$CONNS" -mode async -duration "$DUR" -warmup "$WARM" -series "$series/$name-$rate.csv" | tail -1) || line="failed"
			echo "$name  rate=$rate  $line"
			record "$name" "$rate" "$line"
			stop_pid "$pid"
			rm -rf "$store"
			settle
		done
	done
	stop_pid "$jns"
fi

# ---- side by side -------------------------------------------------------------------
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    sysname, rate, rest = line.split(" ", 2)
    kv = dict(p.split("=", 1) for p in rest.split() if "=" in p)
    rows[(sysname, rate)] = kv
systems = [s for s in ("mqd-sync", "mqd-async", "java-sync", "java-async", "nats-always", "nats-default") if any(k[0] == s for k in rows)]
rates = list(dict.fromkeys(k[1] for k in rows))
def g(s, r, k):
    try: return float(rows[(s, r)][k])
    except (KeyError, ValueError): return None
print()
print("%-7s %-13s %9s %9s %9s %9s %9s %7s" % ("rate", "system", "tps", "p50_ms", "p99_ms", "p999_ms", "max_ms", "errors"))
for r in rates:
    for s in systems:
        if (s, r) in rows:
            kv = rows[(s, r)]
            print("%-7s %-13s %9s %9s %9s %9s %9s %7s" % (r, s, kv.get("tps", "-"), kv.get("p50_ms", "-"), kv.get("p99_ms", "-"),
                  kv.get("p999_ms", "-"), kv.get("max_ms", "-"), kv.get("errors", "-")))
def ratio(a, b):
    return "-" if a is None or b in (None, 0) else "%.2f" % (a / b)
print()
print("ratios mqd / NATS (tps: >1 = mqd faster; latency: <1 = mqd lower)")
print("%-7s %-26s %8s %8s %8s %8s" % ("rate", "pair", "tps", "p50", "p99", "p999"))
for r in rates:
    for a, b in (("mqd-sync", "nats-always"), ("mqd-async", "nats-default")):
        if (a, r) in rows and (b, r) in rows:
            print("%-7s %-26s %8s %8s %8s %8s" % (r, a + "/" + b, ratio(g(a, r, "tps"), g(b, r, "tps")),
                  ratio(g(a, r, "p50_ms"), g(b, r, "p50_ms")), ratio(g(a, r, "p99_ms"), g(b, r, "p99_ms")),
                  ratio(g(a, r, "p999_ms"), g(b, r, "p999_ms"))))
print()
print("ratios mqd / Apache RocketMQ 4.9.7 (tps: >1 = mqd faster; latency: <1 = mqd lower)")
print("%-7s %-26s %8s %8s %8s %8s" % ("rate", "pair", "tps", "p50", "p99", "p999"))
for r in rates:
    for a, b in (("mqd-sync", "java-sync"), ("mqd-async", "java-async")):
        if (a, r) in rows and (b, r) in rows:
            print("%-7s %-26s %8s %8s %8s %8s" % (r, a + "/" + b, ratio(g(a, r, "tps"), g(b, r, "tps")),
                  ratio(g(a, r, "p50_ms"), g(b, r, "p50_ms")), ratio(g(a, r, "p99_ms"), g(b, r, "p99_ms")),
                  ratio(g(a, r, "p999_ms"), g(b, r, "p999_ms"))))
PY

# ---- per-second p99, one PNG per rate ------------------------------------------------
for rate in $RATES; do
	files=()
	for s in mqd-sync mqd-async nats-always nats-default java-sync java-async; do
		[[ -s $series/$s-$rate.csv ]] && files+=("$s=$series/$s-$rate.csv")
	done
	((${#files[@]})) || continue
	"$tmp/mqbench" plot -o "$series/p99-$rate.png" -y p99_ms \
		-title "p99 per second at $rate msg/s, $SIZE bodies, open loop ($stamp)" "${files[@]}" ||
		echo "plot of $rate failed"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end"
echo "report: $report; per-second series and p99 plots: $series/"
