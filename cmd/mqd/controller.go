package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mqd/mqd/controller"
)

// runController runs one member of the failover controller group
// (package controller; README "Cluster with automatic failover"):
//
//	mqd controller --id n0 --dir /var/mqd/ctl0 \
//	  --peers 'n0=127.0.0.1:9880=127.0.0.1:9878;n1=…;n2=…'
func runController(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("mqd controller", flag.ContinueOnError)
	id := fs.String("id", "", "this controller's id among --peers (required)")
	peers := fs.String("peers", "", "the group: id=raftHost:port=host:port;… (required; host:port is what brokers put in controllerAddr)")
	dir := fs.String("dir", "", "raft log, stable store and snapshots (required)")
	unclean := fs.Bool("unclean", false, "enableElectUncleanMaster: elect outside the in-sync set when no in-sync replica is alive (may lose acknowledged messages)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" || *peers == "" || *dir == "" {
		return fmt.Errorf("controller: --id, --peers and --dir are required")
	}
	ps, err := controller.ParsePeers(*peers)
	if err != nil {
		return err
	}
	n, err := controller.Start(controller.Config{ID: *id, Peers: ps, Dir: *dir, Unclean: *unclean, Logger: log})
	if err != nil {
		return err
	}
	log.Info("controller started", "id", *id, "addr", n.Addr().String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Info("controller: shutting down", "signal", s.String())
	return n.Close()
}
