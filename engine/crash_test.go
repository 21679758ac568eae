package engine

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
)

var crashCycles = flag.Int("crash.cycles", 5, "kill -9 cycles of TestKillNineNeverLosesAckedMessages per I/O backend and flush policy")

const crashDirEnv = "MQD_CRASH_CHILD_DIR"

// crashBody is the deterministic body of message seq: mostly small, one
// in 6 of 6 to 30 KB, larger than one write piece of testConfig's commit
// log, so crash runs include multi-piece rounds.
func crashBody(seq int) []byte {
	n := 1 + seq%40
	if seq%6 == 5 {
		n = 1000 + seq%2000
	}
	return bytes.Repeat([]byte(fmt.Sprintf("[%d]", seq)), n)
}

// TestCrashChild is the child process of the kill -9 test: it appends
// under the flush policy and I/O backend its parent names from 8
// goroutines and prints "ack <offset> <seq> <end>" for every PutOK until
// it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestKillNineNeverLosesAckedMessages")
	}
	ft := FlushDiskType(os.Getenv("MQD_CRASH_FLUSH"))
	cfg := testConfig(dir, ft)
	cfg.IOBackend = os.Getenv("MQD_CRASH_IO")
	s, err := Open(cfg)
	if err != nil {
		fmt.Println("open-error", err)
		os.Exit(3)
	}
	start, _ := strconv.Atoi(os.Getenv("MQD_CRASH_SEQ"))
	out := make(chan string, 1024)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; ; i++ {
				seq := start + g + 8*i
				m := msg("Crash", int32(seq%4), string(crashBody(seq)), map[string]string{"KEYS": strconv.Itoa(seq)})
				r := s.PutMessage(m)
				if r.Status != PutOK {
					out <- fmt.Sprintf("fail %d %v", seq, r.Status)
					continue
				}
				out <- fmt.Sprintf("ack %d %d %d", r.Offset, seq, r.Offset+int64(r.Size)+4)
			}
		}()
	}
	w := bufio.NewWriter(os.Stdout)
	for line := range out {
		w.WriteString(line + "\n")
		if len(out) == 0 {
			w.Flush()
		}
	}
}

type ack struct {
	off, end int64
	seq      int
}

// TestKillNineNeverLosesAckedMessages kills a child appending process with
// SIGKILL again and again, on each I/O backend (io_uring where the kernel
// allows it) under each flush policy, and reopens the store each time:
// every PUT_OK must be there intact, with queues and index consistent
// (under ASYNC_FLUSH a put returns once written, and a kill loses no
// written byte). -crash.cycles is per backend and policy.
func TestKillNineNeverLosesAckedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, be := range []string{"io_uring", "pwrite"} {
		if be == "io_uring" && !uringWorks() {
			t.Log("io_uring unavailable: pwrite only")
			continue
		}
		for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
			t.Run(be+"/"+string(ft), func(t *testing.T) { killNine(t, be, ft) })
		}
	}
}

func killNine(t *testing.T, be string, ft FlushDiskType) {
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d, %d cycles", seed, *crashCycles)
	var acked []ack
	for cycle := 0; cycle < *crashCycles; cycle++ {
		acked = append(acked, runAndKill(t, dir, be, ft, cycle*1_000_000, time.Duration(20+rng.IntN(200))*time.Millisecond)...)
		verifyCrashStore(t, dir, be, ft, acked, cycle)
	}
	if len(acked) == 0 {
		t.Fatal("no message was acknowledged in any cycle")
	}
	t.Logf("%d acknowledged messages survived %d kills", len(acked), *crashCycles)
}

// runAndKill starts a child appending into dir, kills it with SIGKILL after
// d and returns the acknowledgements it printed.
func runAndKill(t *testing.T, dir, be string, ft FlushDiskType, seqBase int, d time.Duration) []ack {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, "MQD_CRASH_SEQ="+strconv.Itoa(seqBase),
		"MQD_CRASH_FLUSH="+string(ft), "MQD_CRASH_IO="+be)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan []ack, 1)
	go func() {
		var acks []ack
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 4 && f[0] == "ack":
				off, _ := strconv.ParseInt(f[1], 10, 64)
				seq, _ := strconv.Atoi(f[2])
				end, _ := strconv.ParseInt(f[3], 10, 64)
				acks = append(acks, ack{off: off, end: end, seq: seq})
			case len(f) > 0 && f[0] == "open-error":
				t.Errorf("child could not open the store: %s", sc.Text())
			}
		}
		lines <- acks
	}()
	time.Sleep(d)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	return <-lines
}

// verifyCrashStore reopens the store after a kill: every acknowledged
// message must be there intact, and every record in the log must be valid.
func verifyCrashStore(t *testing.T, dir, be string, ft FlushDiskType, acked []ack, cycle int) {
	cfg := testConfig(dir, ft)
	cfg.IOBackend = be
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("cycle %d: reopen: %v", cycle, err)
	}
	defer s.Close()
	for _, a := range acked {
		b, err := s.ReadMessage(a.off)
		if err != nil {
			t.Fatalf("cycle %d: acknowledged seq %d at %d lost: %v", cycle, a.seq, a.off, err)
		}
		v, err := message.Parse(b)
		if err != nil || !v.CheckBodyCRC() || !bytes.Equal(v.Body, crashBody(a.seq)) {
			t.Fatalf("cycle %d: acknowledged seq %d at %d damaged: %v", cycle, a.seq, a.off, err)
		}
	}
	it := s.cl.NewIterator(s.cl.MinOffset())
	defer it.Close()
	next := map[int32]int64{}
	for {
		_, rec, err := it.Next(s.cl.Tail())
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		if rec == nil {
			break
		}
		v, err := message.Parse(rec)
		if err != nil || !v.CheckBodyCRC() {
			t.Fatalf("cycle %d: invalid record in the recovered log: %v", cycle, err)
		}
		if v.QueueOffset != next[v.QueueID] {
			t.Fatalf("cycle %d: queue %d offset %d, want %d", cycle, v.QueueID, v.QueueOffset, next[v.QueueID])
		}
		next[v.QueueID]++
	}
	verifyQueuesAndIndex(t, s, acked, cycle)
}

// verifyQueuesAndIndex checks that every consume-queue entry points at a
// valid record of its topic, queue and offset, and that acknowledged keys
// are found through the index (the newest 300 and a sample of older ones).
func verifyQueuesAndIndex(t *testing.T, s *Store, acked []ack, cycle int) {
	for q := int32(0); q < 4; q++ {
		for off := s.MinOffsetInQueue("Crash", q); off < s.MaxOffsetInQueue("Crash", q); off++ {
			r := s.GetMessage("Crash", q, off, 1, nil)
			if r.Status != Found || len(r.Messages) != 1 {
				t.Fatalf("cycle %d: queue %d offset %d: %v", cycle, q, off, r.Status)
			}
			v, err := message.Parse(r.Messages[0])
			if err != nil || v.TopicString() != "Crash" || v.QueueID != q || v.QueueOffset != off {
				t.Fatalf("cycle %d: entry %d/%d points at %v %+v", cycle, q, off, err, v)
			}
			r.Release()
		}
	}
	for i, a := range acked {
		if i < len(acked)-300 && i%97 != 0 {
			continue
		}
		res, err := s.QueryMessage("Crash", strconv.Itoa(a.seq), 32, 0, time.Now().UnixMilli()+1000)
		if err != nil || len(res.Records) != 1 {
			t.Fatalf("cycle %d: key %d through the index: %v, %d records", cycle, a.seq, err, len(res.Records))
		}
	}
}
