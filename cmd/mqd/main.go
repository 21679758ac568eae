// Command mqd runs a RocketMQ-compatible broker and nameserver.
//
//	mqd                 nameserver on 9876 and broker on 10911, store in ~/mqd/store
//	mqd namesrv         the nameserver only
//	mqd broker          the broker only (give --namesrv)
//	mqd --flush=sync    SYNC_FLUSH: a send is acknowledged once durable
//	mqd -c broker.conf  RocketMQ broker.conf keys; flags override the file
//	mqd --metrics-addr :5557   Prometheus metrics at /metrics
//	mqd --pprof 127.0.0.1:6060 Go's net/http/pprof
//	mqd controller --id n0 --peers 'n0=h:9880=h:9878;…' --dir DIR
//	                    a member of the failover controller group (package controller)
//	mqd repair --store DIR --truncate-at OFFSET [-c broker.conf]
//	                    cut a corrupt commit log (mqd stopped; see commitlog/FORMAT.md)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/failover"
	"github.com/mqd/mqd/internal/metrics"
	"github.com/mqd/mqd/internal/namesrv"
)

type options struct {
	role, conf, flush, store, brokerIP, namesrvList, ioBackend, pprof string
	listenPort, namesrvPort                                           int
	namesrvACL                                                        string // plain_acl.yml guarding the nameserver's admin writes
	metricsAddr                                                       string // Prometheus /metrics (internal/metrics)
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
	fs.StringVar(&o.namesrvACL, "namesrv-acl", "", "plain_acl.yml: broker registration and nameserver admin writes need an admin account (SECURITY.md)")
	fs.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. :5557)")
	return o, fs.Parse(args)
}

func run(args []string, log *slog.Logger) error {
	if len(args) > 0 && args[0] == "repair" {
		return repair(args[1:], log)
	}
	if len(args) > 0 && args[0] == "controller" {
		return runController(args[1:], log)
	}
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.pprof != "" {
		go func() { log.Error("pprof", "err", http.ListenAndServe(o.pprof, nil)) }()
	}
	var ns *namesrv.Server
	if o.role != "broker" && o.namesrvPort != 0 {
		nsStore := broker.ExpandHome("~/mqd/store")
		if o.store != "" {
			nsStore = o.store
		}
		if ns, err = namesrv.New(namesrv.Config{Addr: ":" + strconv.Itoa(o.namesrvPort), Logger: log, ACLFile: o.namesrvACL,
			ConfigStorePath: filepath.Join(nsStore, "config", "namesrv.properties")}); err != nil {
			return err
		}
		if err := ns.Start(); err != nil {
			return err
		}
		log.Info("nameserver started", "port", o.namesrvPort)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var b *failover.Node   // the broker, restarted in-process when its role changes
	stopAgent := func() {} // controller mode: stops following the controller
	if o.role != "namesrv" {
		cfg, err := brokerConfig(o, log)
		if err != nil {
			return err
		}
		if cfg.Controller.Enable {
			b, stopAgent, err = startControlled(cfg, log, sig) // controlled.go
			if errors.Is(err, errInterrupted) {
				return nil
			}
		} else {
			b, err = failover.Start(failover.ConfiguredRole(cfg))
		}
		if err != nil {
			return err
		}
		if o.metricsAddr != "" {
			serveMetrics(o.metricsAddr, b, log)
		}
	}
	var fatal <-chan error // a slave refused by its master stops mqd
	if b != nil {
		fatal = b.Fatal()
	}
	var fatalErr error
	select {
	case s := <-sig:
		log.Info("mqd: shutting down", "signal", s.String())
	case fatalErr = <-fatal:
		log.Error("mqd: shutting down", "err", fatalErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopAgent()
	if b != nil {
		if err := b.Shutdown(ctx); err != nil {
			return errors.Join(fatalErr, err)
		}
		if fatalErr != nil {
			return fatalErr
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

// repair runs engine.Repair: the store's Open refused a corrupt commit log
// and named the offset to cut at.
func repair(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("mqd repair", flag.ContinueOnError)
	store := fs.String("store", "", "store directory (required)")
	at := fs.Int64("truncate-at", -1, "commit-log offset to cut at: the corrupt record's, from the error (required)")
	conf := fs.String("c", "", "broker.conf the store was run with (for mappedFileSizeCommitLog)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *store == "" || *at < 0 {
		return fmt.Errorf("repair: --store and --truncate-at are required")
	}
	cfg := broker.NewConfig()
	if *conf != "" {
		if _, err := broker.LoadConfFile(*conf, &cfg); err != nil {
			return err
		}
	}
	cfg.Store.Dir, cfg.Store.Logger = *store, log
	res, err := engine.Repair(cfg.Store, *at)
	if err != nil {
		return err
	}
	fmt.Printf("commit log now ends at %d; what was cut is kept in:\n", res.Offset)
	for _, k := range res.Kept {
		fmt.Println("  " + k)
	}
	return nil
}

// serveMetrics serves the running broker's Prometheus metrics at /metrics
// (the broker changes when its role does).
func serveMetrics(addr string, n *failover.Node, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := n.Broker()
		if b == nil {
			http.Error(w, "broker restarting", http.StatusServiceUnavailable)
			return
		}
		metrics.Handler(b).ServeHTTP(w, r)
	}))
	go func() { log.Error("metrics", "err", http.ListenAndServe(addr, mux)) }()
	log.Info("metrics served", "addr", addr)
}
