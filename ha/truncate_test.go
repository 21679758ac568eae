package ha

import (
	"bytes"
	"slices"
	"testing"
)

// TestTruncationPoint walks histories through the master's answer (agree,
// judgeEpochs) and the slave's cut (cutPoint).
func TestTruncationPoint(t *testing.T) {
	for _, c := range []struct {
		name      string
		master    []Entry
		masterEnd int64
		slave     []Entry
		slaveEnd  int64
		trunc     bool  // the master orders a truncation
		cut       int64 // where the slave cuts (when trunc)
	}{
		{"caught-up slave", []Entry{{1, 0}}, 500, []Entry{{1, 0}}, 500, false, 0},
		{"lagging slave", []Entry{{1, 0}, {2, 300}}, 500, []Entry{{1, 0}}, 200, false, 0},
		{"slave at the epoch boundary", []Entry{{1, 0}, {2, 300}}, 500, []Entry{{1, 0}}, 300, false, 0},
		{"old master with unreplicated bytes", []Entry{{1, 0}, {2, 300}}, 500, []Entry{{1, 0}}, 350, true, 300},
		{"old master far ahead", []Entry{{1, 0}, {2, 300}}, 310, []Entry{{1, 0}}, 900, true, 300},
		{"empty slave", []Entry{{1, 0}, {2, 300}}, 500, nil, 0, false, 0},
		{"slave without epochs holding bytes", []Entry{{1, 0}, {2, 300}}, 500, nil, 100, true, 0},
		{"slave without epochs, master's first epoch late", []Entry{{3, 200}}, 500, nil, 150, false, 0},
		{"slave without epochs beyond the first epoch", []Entry{{3, 200}}, 500, nil, 250, true, 200},
		{"slave in an epoch the master never had", []Entry{{1, 0}, {2, 300}, {4, 600}}, 700, []Entry{{1, 0}, {3, 400}}, 650, true, 400},
		{"slave epoch unknown to master, no bytes in it", []Entry{{1, 0}, {2, 300}, {4, 600}}, 700, []Entry{{1, 0}, {2, 300}, {3, 650}}, 650, true, 600},
		{"slave ahead in the master's current epoch", []Entry{{1, 0}, {2, 300}}, 400, []Entry{{1, 0}, {2, 300}}, 450, true, 400},
		{"master with no epochs never orders", nil, 400, []Entry{{1, 0}}, 450, false, 0},
		{"two epochs back", []Entry{{1, 0}, {2, 100}, {3, 200}, {4, 300}}, 400, []Entry{{1, 0}, {2, 100}}, 250, true, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			last := Entry{}
			if len(c.slave) > 0 {
				last = c.slave[len(c.slave)-1]
			}
			rep, trunc, err := judgeEpochs(c.master, c.masterEnd, 0, hello{offset: c.slaveEnd}, helloEpochs{epoch: last.Epoch, start: last.Start})
			if err != nil {
				t.Fatal(err)
			}
			if trunc != c.trunc {
				t.Fatalf("truncate = %v (answer epoch %d end %d), want %v", trunc, rep.epoch, rep.end, c.trunc)
			}
			if !trunc {
				for _, e := range rep.later {
					if e.Epoch <= last.Epoch || e.Start < c.slaveEnd {
						t.Fatalf("accepted slave would record epoch %+v with log end %d", e, c.slaveEnd)
					}
				}
				return
			}
			if cut := cutPoint(c.slave, c.slaveEnd, rep.epoch, rep.end); cut != c.cut {
				t.Fatalf("cut at %d (answer epoch %d end %d), want %d", cut, rep.epoch, rep.end, c.cut)
			}
		})
	}
}

func TestJudgeEpochsRefuses(t *testing.T) {
	master := []Entry{{1, 0}, {2, 300}}
	if _, _, err := judgeEpochs(master, 500, 0, hello{offset: 400}, helloEpochs{epoch: 2, start: 350}); err == nil {
		t.Fatal("two starts of one epoch accepted")
	}
	if _, _, err := judgeEpochs(master, 500, 320, hello{offset: 400}, helloEpochs{epoch: 1}); err == nil {
		t.Fatal("truncation below the master's oldest offset ordered")
	}
}

func TestEpochWireRoundTrip(t *testing.T) {
	x := replyEpochs{epoch: 3, end: 77, later: []Entry{{4, 77}, {9, 1000}}}
	got, err := readReplyEpochs(bytes.NewReader(x.encode()))
	if err != nil || got.epoch != 3 || got.end != 77 || !slices.Equal(got.later, x.later) {
		t.Fatalf("%+v %v", got, err)
	}
	h, err := readHelloEpochs(bytes.NewReader(helloEpochs{epoch: 5, start: 123}.encode()))
	if err != nil || h.epoch != 5 || h.start != 123 {
		t.Fatalf("%+v %v", h, err)
	}
	bad := replyEpochs{epoch: 3, end: 77, later: []Entry{{2, 80}}}
	if _, err := readReplyEpochs(bytes.NewReader(bad.encode())); err == nil {
		t.Fatal("reply with an epoch below the answer accepted")
	}
}
