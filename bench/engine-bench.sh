#!/usr/bin/env bash
# Measures the disk's own limits with fio and the engine's append path with
# `go test -bench`, in one sitting on one file system, and prints both.
# Usage: bash bench/engine-bench.sh [dir on the disk to measure]   (default: a temp dir)
# Needs fio (apt-get install fio). Takes about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/mqd-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
out=bench/out
mkdir -p "$out"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(df -T "$dir" | awk 'NR==2{print $2}') on $(df "$dir" | awk 'NR==2{print $1}')"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')   date: $(date -u +%FT%TZ)"

fio_run() { # name, extra fio args...
	local name=$1; shift
	fio --name="$name" --filename="$dir/fio.$name" --size=1G --runtime=15 --time_based --group_reporting \
		--output-format=json "$@" >"$out/fio-$name.json"
	rm -f "$dir/fio.$name"
}
fio_run sync1   --rw=write --bs=1k --ioengine=psync --fdatasync=1
fio_run sync64  --rw=write --bs=1k --ioengine=psync --fdatasync=64
fio_run sync512 --rw=write --bs=1k --ioengine=psync --fdatasync=512
fio_run direct  --rw=write --bs=1M --ioengine=io_uring --direct=1 --iodepth=16
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def load(n): return json.load(open(f"{out}/fio-{n}.json"))["jobs"][0]
for n in ("sync1", "sync64", "sync512"):
    j = load(n)
    iops = j["write"]["iops"]
    sync = j.get("sync", {}).get("lat_ns", {}).get("percentile", {})
    p50 = sync.get("50.000000", 0) / 1000
    p99 = sync.get("99.000000", 0) / 1000
    print(f"fio 1 KiB writes, fdatasync every {n[4:]:>3}: {iops:10.0f} writes/s   fdatasync p50 {p50:6.0f} us  p99 {p99:6.0f} us")
j = load("direct")
print(f"fio O_DIRECT 1 MiB writes, io_uring depth 16: {j['write']['bw_bytes']/1e6:8.0f} MB/s")
PY

MQD_BENCH_DIR=$dir go test -run '^$' -bench 'AppendSync|AppendAsync|SyncAlternatives|MmapMsync' \
	-benchtime 5s -timeout 30m ./bench | tee "$out/engine.txt"
