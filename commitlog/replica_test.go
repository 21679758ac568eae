package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// frames reads every frame of l from 'from' as a master sends them.
func framesOf(t *testing.T, l *Log, from int64) []byte {
	t.Helper()
	it := l.NewIterator(from)
	defer it.Close()
	var out []byte
	for {
		_, rec, err := it.Next(l.Written())
		if err != nil {
			t.Fatal(err)
		}
		if rec == nil {
			return out
		}
		out = append(out, rec...)
		out = binary.BigEndian.AppendUint32(out, crc32Checksum(rec))
	}
}

func TestAppendFramesCopiesALogExactly(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		master := openLog(t, fs, t.TempDir(), p, Hint{})
		defer master.Close()
		for i := range 300 { // 64 KiB segments: several rolls
			mustAppend(t, master, one(strings.Repeat(fmt.Sprint(i), 1+i%150)))
		}
		waitWritten(t, master, master.Tail())
		all := framesOf(t, master, 0)

		slave := openLog(t, fs, t.TempDir(), p, Hint{})
		defer slave.Close()
		// In uneven pieces, each a whole number of frames.
		from := int64(0)
		for pos := 0; pos < len(all); {
			n := 0
			for k := 0; k < 1+pos%7 && pos+n < len(all); k++ {
				n += int(binary.BigEndian.Uint32(all[pos+n:])) + trailerSize
			}
			end, err := slave.AppendFrames(from, all[pos:pos+n], p.Wait())
			if err != nil {
				t.Fatal(err)
			}
			from, pos = end, pos+n
		}
		if from != master.Tail() {
			t.Fatalf("slave ends at %d, master at %d", from, master.Tail())
		}
		if err := slave.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := master.Flush(); err != nil {
			t.Fatal(err)
		}
		for base := int64(0); base < from; base += master.SegmentSize() {
			a, err := master.ReadRecord(base, int32(min(master.SegmentSize(), master.Written()-base)), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := slave.ReadRecord(base, int32(len(a)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("segment %d differs", base)
			}
		}
		// The join point agrees.
		mc, mok, _ := master.TrailerBefore(from)
		sc, sok, _ := slave.TrailerBefore(from)
		if mc != sc || mok != sok || !mok {
			t.Fatalf("trailers %x/%v vs %x/%v", mc, mok, sc, sok)
		}
	})
}

func TestAppendFramesRefusesBadFrames(t *testing.T) {
	fs := vfs.Default()
	master := openLog(t, fs, t.TempDir(), flush.DefaultAsync, Hint{})
	defer master.Close()
	for i := range 5 {
		mustAppend(t, master, one(fmt.Sprint("m", i)))
	}
	waitWritten(t, master, master.Tail())
	good := framesOf(t, master, 0)
	slave := openLog(t, fs, t.TempDir(), flush.DefaultAsync, Hint{})
	defer slave.Close()

	flip := bytes.Clone(good)
	flip[40] ^= 1 // a header bit: the body CRC does not cover it, the frame CRC does
	cases := map[string]struct {
		from   int64
		frames []byte
	}{
		"wrong start":    {8, good},
		"flipped bit":    {0, flip},
		"truncated":      {0, good[:len(good)-3]},
		"tiny size":      {0, []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		"skips a record": {0, good[binary.BigEndian.Uint32(good)+trailerSize:]},
	}
	for name, c := range cases {
		if _, err := slave.AppendFrames(c.from, c.frames, flush.NoWait); err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if slave.Tail() != 0 {
			t.Fatalf("%s: appended %d bytes", name, slave.Tail())
		}
	}
	// Random garbage never panics and never appends.
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := bytes.Clone(good[:r.IntN(len(good))])
		for k := 0; k < 1+r.IntN(4) && len(b) > 0; k++ {
			b[r.IntN(len(b))] = byte(r.Uint32())
		}
		if _, err := slave.AppendFrames(0, b, flush.NoWait); err == nil && len(b) > 0 {
			// A prefix of whole, intact frames is legitimately accepted.
			if slave.Tail() == 0 {
				t.Fatal("accepted without appending")
			}
			break
		}
	}
	if _, err := slave.AppendFrames(0, good, flush.NoWait); err != nil && !errors.Is(err, ErrReplicaGap) {
		t.Fatal(err)
	}
}
