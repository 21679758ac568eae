// Command mqbench drives a RocketMQ 4.x broker (mqd or Apache RocketMQ)
// over the wire with an open-loop producer, a long-polling consumer, or
// both (end to end), and reports latency percentiles from HDR histograms.
//
//	mqbench produce -size 1k -tps 100k            open-loop sends for 10 s after a 2 s warmup
//	mqbench produce -mode batch:32 -tps max       as fast as the request window allows
//	mqbench consume -t mqbench                    receipt − store time of new messages
//	mqbench e2e -tps 10k                          receipt − born time, producing and consuming
//	mqbench produce -series s.csv                 also one CSV line per second (bench.SeriesHeader)
//	mqbench produce -topics 10000 -queues 8       sends spread over 10,000 topics of 8 queues
//	mqbench plot -o p99.png a.csv b.csv           the per-second p99 of series files as a PNG
//
// One line per second, then one summary line of key=value pairs:
//
//	tps=… p50_ms=… p99_ms=… p999_ms=… max_ms=… errors=… sent=… acked=… duration_s=… …
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqd/mqd/bench"
)

const usage = `usage: mqbench produce|consume|e2e|plot [flags]   (mqbench produce -h lists the flags)`

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "plot" {
		if err := runPlot(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "mqbench plot:", err)
			os.Exit(2)
		}
		return
	}
	if len(os.Args) < 2 || (os.Args[1] != "produce" && os.Args[1] != "consume" && os.Args[1] != "e2e") {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	cfg, seriesPath, err := parseFlags(cmd, os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbench:", err)
		os.Exit(2)
	}
	if seriesPath != "" {
		f, err := os.Create(seriesPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mqbench:", err)
			os.Exit(2)
		}
		defer f.Close()
		cfg.Series = bench.NewSeries(f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "produce":
		_, err = bench.Produce(ctx, cfg)
	case "consume":
		_, err = bench.Consume(ctx, cfg)
	case "e2e":
		_, err = bench.E2E(ctx, cfg)
	}
	if err == nil {
		err = cfg.Series.Err()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqbench:", err)
		os.Exit(1) // deferred closes are skipped: the series lines are already written
	}
}

// parseFlags returns the run's configuration and the -series path.
func parseFlags(cmd string, args []string) (bench.WireConfig, string, error) {
	fs := flag.NewFlagSet("mqbench "+cmd, flag.ContinueOnError)
	var (
		cfg                                  bench.WireConfig
		namesrv, size, tps, mode, keys, tags string
		from                                 string
		verbose                              bool
		duration, warmup, timeout, slack     time.Duration
		count                                int64
		queues, conns, inflight              int
		topic, producerGroup, consumerGroup  string
		v2                                   bool
		series                               string
		topics                               int
	)
	fs.StringVar(&namesrv, "n", "127.0.0.1:9876", "nameserver address(es), separated by ';' or ','")
	fs.StringVar(&topic, "t", "mqbench", "topic (created with -queues queues if missing)")
	fs.IntVar(&queues, "queues", 8, "queues of a topic mqbench creates")
	fs.IntVar(&topics, "topics", 1, "produce: spread the sends round-robin over this many topics, named <t>_0 … <t>_<N-1> when N > 1 (created with -queues queues if missing)")
	fs.StringVar(&series, "series", "", "also write one CSV line per second to this file (second,sent,acked,received,errors,p50_ms,p99_ms,p999_ms,max_ms,phase)")
	fs.StringVar(&size, "size", "1k", "message body size: 512, 1k, 4k, 1m")
	fs.StringVar(&tps, "tps", "10k", "target messages/s (open loop): 1000, 10k, 100k, or max")
	fs.IntVar(&conns, "c", 4, "producer connections")
	fs.StringVar(&mode, "mode", "async", "sync, async, oneway or batch:N")
	fs.IntVar(&inflight, "inflight", 0, "requests in flight per connection (default 16 sync, 4096 otherwise)")
	fs.StringVar(&keys, "keys", "on", "UNIQ_KEY and KEYS properties (indexed by the broker): on or off")
	fs.StringVar(&tags, "tags", "on", "TAGS property: on or off")
	fs.BoolVar(&v2, "v2", false, "send with SEND_MESSAGE_V2 (310, Java's default) instead of SEND_MESSAGE (10, the Go client's)")
	fs.DurationVar(&duration, "duration", 10*time.Second, "measured phase (ignored with -count)")
	fs.Int64Var(&count, "count", 0, "messages in the measured phase (instead of -duration)")
	fs.DurationVar(&warmup, "warmup", 2*time.Second, "unmeasured phase at the same rate before it")
	fs.DurationVar(&timeout, "timeout", 3*time.Second, "per-request timeout")
	fs.DurationVar(&slack, "slack", 200*time.Microsecond, "one scheduler wake-up sends the requests due within this window (early ones are measured from their actual send)")
	fs.StringVar(&producerGroup, "pg", "mqbench_pg", "producer group")
	fs.StringVar(&consumerGroup, "g", "mqbench_cg", "consumer group")
	fs.StringVar(&from, "from", "last", "consume: start at the queues' last (max) or first (min) offset")
	fs.BoolVar(&verbose, "v", false, "diagnostics on stderr (topic creation, first error remarks)")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if topics < 1 {
		return cfg, "", fmt.Errorf("-topics %d: want at least 1", topics)
	}
	if topics != 1 && cmd != "produce" {
		return cfg, "", fmt.Errorf("-topics: only produce spreads over topics")
	}
	var err error
	cfg = bench.WireConfig{Namesrv: bench.SplitAddrs(namesrv), Topic: topic, Topics: topics, Queues: queues, Conns: conns,
		Inflight: inflight, V2: v2, Duration: duration, Count: count, Warmup: warmup, Timeout: timeout, Slack: slack,
		ProducerGroup: producerGroup, ConsumerGroup: consumerGroup, FromFirst: from == "first",
		Out: os.Stdout, Log: io.Discard}
	if verbose {
		cfg.Log = os.Stderr
	}
	if from != "first" && from != "last" {
		return cfg, "", fmt.Errorf("-from %q: want first or last", from)
	}
	if cfg.Size, err = bench.ParseSize(size); err != nil {
		return cfg, "", err
	}
	if cfg.TPS, err = bench.ParseRate(tps); err != nil {
		return cfg, "", err
	}
	if cfg.Mode, cfg.Batch, err = bench.ParseMode(mode); err != nil {
		return cfg, "", err
	}
	if cfg.Keys, err = bench.ParseOnOff(keys); err != nil {
		return cfg, "", err
	}
	if cfg.Tags, err = bench.ParseOnOff(tags); err != nil {
		return cfg, "", err
	}
	return cfg, series, cfg.Validate()
}
