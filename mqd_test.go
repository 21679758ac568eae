package mqd

import (
	"os"
	"testing"
)

func TestStartCreateTopicClose(t *testing.T) {
	c, err := Start(Options{NoAutoCreateTopic: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.NamesrvAddr() == "" || c.BrokerAddr() == "" {
		t.Fatalf("addresses %q %q", c.NamesrvAddr(), c.BrokerAddr())
	}
	if err := c.CreateTopic("T1", 2); err != nil {
		t.Fatal(err)
	}
	if route, ok := c.ns.TopicRoute("T1"); !ok || route.QueueDatas[0].WriteQueueNums != 2 {
		t.Fatalf("route %+v %v", route, ok)
	}
	if err := c.CreateTopic("T2", 0); err == nil {
		t.Fatal("0 queues accepted")
	}
	dir := c.Dir()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temporary store %s left behind: %v", dir, err)
	}
}

func TestKeepsGivenDir(t *testing.T) {
	dir := t.TempDir()
	c, err := Start(Options{Dir: dir, AsyncFlush: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/config"); err != nil {
		t.Fatalf("store dir emptied: %v", err)
	}
}
