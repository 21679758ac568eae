// Command mqd runs a RocketMQ-compatible broker and nameserver.
//
//	mqd                 nameserver on 9876 and broker on 10911, store in ~/mqd/store
//	mqd namesrv         the nameserver only
//	mqd broker          the broker only (give --namesrv)
//	mqd --flush=sync    SYNC_FLUSH: a send is acknowledged once durable
//	mqd -c broker.conf  RocketMQ broker.conf keys; flags override the file
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/namesrv"
)

type options struct {
	role, conf, flush, store, brokerIP, namesrvList, ioBackend, pprof string
	listenPort, namesrvPort                                           int
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if os.Getenv("GOGC") == "" {
		// The broker's heap is small and short-lived; collecting at 5x
		// rather than 2x of it measured +15-30% throughput (BENCHMARKS.md).
		debug.SetGCPercent(400)
	}
	if err := run(os.Args[1:], log); err != nil {
		log.Error("mqd: " + err.Error())
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	o := options{role: "all"}
	if len(args) > 0 && (args[0] == "namesrv" || args[0] == "broker") {
		o.role, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("mqd", flag.ContinueOnError)
	fs.StringVar(&o.conf, "c", "", "RocketMQ broker.conf to read")
	fs.StringVar(&o.flush, "flush", "", "flush policy: sync or async (default async, or the file's flushDiskType)")
	fs.StringVar(&o.store, "store", "", "store directory (default ~/mqd/store)")
	fs.IntVar(&o.listenPort, "listen-port", 0, "broker port (default 10911)")
	fs.IntVar(&o.namesrvPort, "namesrv-port", 9876, "embedded nameserver port; 0 = none")
	fs.StringVar(&o.namesrvList, "namesrv", "", "nameserver addresses host:port[;host:port]")
	fs.StringVar(&o.brokerIP, "broker-ip", "", "address put in routes (brokerIP1)")
	fs.StringVar(&o.ioBackend, "io", "auto", "I/O backend: auto, io_uring or pwrite")
	fs.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	return o, fs.Parse(args)
}

func run(args []string, log *slog.Logger) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.pprof != "" {
		go func() { log.Error("pprof", "err", http.ListenAndServe(o.pprof, nil)) }()
	}
	var ns *namesrv.Server
	if o.role != "broker" && o.namesrvPort != 0 {
		if ns, err = namesrv.New(namesrv.Config{Addr: ":" + strconv.Itoa(o.namesrvPort), Logger: log}); err != nil {
			return err
		}
		if err := ns.Start(); err != nil {
			return err
		}
		log.Info("nameserver started", "port", o.namesrvPort)
	}
	var b *broker.Broker
	if o.role != "namesrv" {
		cfg, err := brokerConfig(o, log)
		if err != nil {
			return err
		}
		if b, err = broker.New(cfg); err != nil {
			return err
		}
		if err := b.Start(); err != nil {
			return err
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	log.Info("mqd: shutting down", "signal", (<-sig).String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b != nil {
		if err := b.Shutdown(ctx); err != nil {
			return err
		}
	}
	if ns != nil {
		return ns.Shutdown(ctx)
	}
	return nil
}

func brokerConfig(o options, log *slog.Logger) (broker.Config, error) {
	cfg := broker.NewConfig()
	cfg.Logger = log
	cfg.ListenPort = 10911
	cfg.Store.Dir = broker.ExpandHome("~/mqd/store")
	if o.conf != "" {
		ignored, err := broker.LoadConfFile(o.conf, &cfg)
		if err != nil {
			return cfg, err
		}
		if len(ignored) > 0 {
			log.Warn("broker.conf keys not used by mqd", "keys", ignored)
		}
	}
	switch o.flush {
	case "sync":
		cfg.Store.FlushDiskType = engine.SyncFlush
	case "async":
		cfg.Store.FlushDiskType = engine.AsyncFlush
	case "":
	default:
		return cfg, fmt.Errorf("--flush=%s: want sync or async", o.flush)
	}
	if o.store != "" {
		cfg.Store.Dir = o.store
	}
	if o.listenPort != 0 {
		cfg.ListenPort = o.listenPort
	}
	if o.brokerIP != "" {
		cfg.BrokerIP1 = o.brokerIP
	}
	cfg.Store.IOBackend = o.ioBackend
	if o.namesrvList != "" {
		cfg.NamesrvAddrs = broker.SplitAddrs(o.namesrvList)
	} else if len(cfg.NamesrvAddrs) == 0 && o.role == "all" && o.namesrvPort != 0 {
		cfg.NamesrvAddrs = []string{"127.0.0.1:" + strconv.Itoa(o.namesrvPort)}
	}
	return cfg, os.MkdirAll(cfg.Store.Dir, 0o755)
}
