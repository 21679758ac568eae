// Package admin is the logic of mqadmin: each exported method of Admin is
// one command of Java's mqadmin (same name, same options), talking to the
// nameservers and brokers over the remoting protocol and writing
// column-aligned text. cmd/mqadmin only parses flags.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Admin talks to one set of nameservers.
type Admin struct {
	Namesrv []string
	Out     io.Writer
	Timeout time.Duration // per request (default 10 s)
	pool    *remoting.Pool
}

// New returns an Admin for the nameserver list; output goes to out.
func New(namesrv []string, out io.Writer) *Admin {
	return &Admin{Namesrv: namesrv, Out: out, Timeout: 10 * time.Second,
		pool: remoting.NewPool(remoting.ClientConfig{DialTimeout: 3 * time.Second})}
}

// Close releases the connections.
func (a *Admin) Close() { a.pool.Close() }

func (a *Admin) printf(format string, args ...any) { fmt.Fprintf(a.Out, format, args...) }

// CodeError is a non-success response: the server's code and remark.
type CodeError struct {
	Addr   string
	Code   int16
	Remark string
}

func (e *CodeError) Error() string {
	return fmt.Sprintf("%s answered %d (%s): %s", e.Addr, e.Code, protocol.ResponseCodeName(e.Code), e.Remark)
}

// call sends cmd to addr; a response code outside ok (default: success)
// is a *CodeError.
func (a *Admin) call(addr string, cmd *protocol.Command, ok ...int16) (*protocol.Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.Timeout)
	defer cancel()
	resp, err := a.pool.Invoke(ctx, addr, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if resp.Code != protocol.ResponseSuccess && !slices.Contains(ok, resp.Code) {
		return resp, &CodeError{Addr: addr, Code: resp.Code, Remark: resp.Remark}
	}
	return resp, nil
}

// callNamesrv asks each nameserver in turn until one answers.
func (a *Admin) callNamesrv(cmd func() *protocol.Command, ok ...int16) (*protocol.Command, error) {
	if len(a.Namesrv) == 0 {
		return nil, errors.New("no nameserver address: set -n host:port or NAMESRV_ADDR")
	}
	var errs []error
	for _, ns := range a.Namesrv {
		resp, err := a.call(ns, cmd(), ok...)
		var ce *CodeError
		if err == nil || errors.As(err, &ce) {
			return resp, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// eachNamesrv sends cmd to every nameserver (writes must reach all).
func (a *Admin) eachNamesrv(cmd func() *protocol.Command, each func(ns string, resp *protocol.Command)) error {
	if len(a.Namesrv) == 0 {
		return errors.New("no nameserver address: set -n host:port or NAMESRV_ADDR")
	}
	var errs []error
	for _, ns := range a.Namesrv {
		resp, err := a.call(ns, cmd())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if each != nil {
			each(ns, resp)
		}
	}
	return errors.Join(errs...)
}

// ClusterInfo is GET_BROKER_CLUSTER_INFO.
func (a *Admin) ClusterInfo() (*protocol.ClusterInfo, error) {
	resp, err := a.callNamesrv(func() *protocol.Command { return protocol.NewRequest(protocol.GetBrokerClusterInfo, nil) })
	if err != nil {
		return nil, err
	}
	return protocol.DecodeClusterInfo(resp.Body)
}

// Route is GET_ROUTEINFO_BY_TOPIC.
func (a *Admin) Route(topic string) (*protocol.TopicRouteData, error) {
	resp, err := a.callNamesrv(func() *protocol.Command {
		return protocol.NewRequest(protocol.GetRouteInfoByTopic, &protocol.GetRouteInfoRequestHeader{Topic: topic})
	})
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, err)
	}
	return protocol.DecodeTopicRouteData(resp.Body)
}

// target is one broker master a command acts on.
type target struct{ cluster, name, addr string }

// masters resolves -b (a broker address) or -c (every master of a
// cluster); exactly one must be set.
func (a *Admin) masters(brokerAddr, cluster string) ([]target, error) {
	switch {
	case brokerAddr != "" && cluster != "":
		return nil, errors.New("give either -b or -c, not both")
	case brokerAddr != "":
		return []target{{addr: brokerAddr, name: brokerAddr}}, nil
	case cluster == "":
		return nil, errors.New("one of -b (broker address) or -c (cluster name) is required")
	}
	ci, err := a.ClusterInfo()
	if err != nil {
		return nil, err
	}
	names, ok := ci.ClusterAddrTable[cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q not found on the nameserver (known: %v)", cluster, sortedKeys(ci.ClusterAddrTable))
	}
	var out []target
	for _, n := range slices.Sorted(slices.Values(names)) {
		bd := ci.BrokerAddrTable[n]
		if addr := bd.MasterAddr(); addr != "" {
			out = append(out, target{cluster: cluster, name: n, addr: addr})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster %q has no master broker", cluster)
	}
	return out, nil
}

// topicMasters is every master serving topic, from its route.
func (a *Admin) topicMasters(topic string) ([]target, error) {
	r, err := a.Route(topic)
	if err != nil {
		return nil, err
	}
	var out []target
	for _, bd := range r.BrokerDatas {
		if addr := bd.MasterAddr(); addr != "" {
			out = append(out, target{cluster: bd.Cluster, name: bd.BrokerName, addr: addr})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %q has no master broker in its route", topic)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// brokerNameOf maps a master address to its broker name (for output).
func (a *Admin) brokerNameOf(addr string) string {
	ci, err := a.ClusterInfo()
	if err != nil {
		return addr
	}
	for n, bd := range ci.BrokerAddrTable {
		for _, x := range bd.BrokerAddrs {
			if x == addr {
				return n
			}
		}
	}
	return addr
}
