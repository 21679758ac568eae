package ha

// Epoch-aware join (FORMAT.md §1-2, "Epochs"): the slave's hello names its
// last epoch; the master answers where that epoch ends in its own history
// (Kafka's OffsetsForLeaderEpoch); a slave whose log goes beyond that point
// must truncate to it before it may replicate. The computations are pure
// functions over histories so they can be tested as a table.

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Hello v2 extension and reply extension sizes.
const (
	versionEpochs = 2
	helloExt      = 20 // lastEpoch int32, lastStart int64, brokerID int64
	replyExtHead  = 16 // epoch int32, end int64, count uint32
	statusTrunc   = 2  // the slave must truncate to the reply's agreed point
)

// TruncateError is returned by Client.Run when the master says this
// slave's log goes beyond the history they share: the owner must stop the
// store, cut the log at At (keeping a copy), drop the epochs starting at
// or after At (Epochs.TruncateAfter) and start replicating again.
type TruncateError struct {
	At      int64 // cut the log here (a frame boundary both logs share)
	LogEnd  int64 // the slave's log end when it was told
	Epoch   int32 // the newest epoch both histories share up to At
	Master  string
	Message string
}

func (e *TruncateError) Error() string {
	return fmt.Sprintf("ha: master %s: this slave's log (end %d) must be truncated to %d (shared history ends in epoch %d): %s",
		e.Master, e.LogEnd, e.At, e.Epoch, e.Message)
}

// helloEpochs is the v2 hello extension.
type helloEpochs struct {
	epoch    int32 // the slave's last epoch (0: none)
	start    int64 // where it starts in the slave's log
	brokerID int64 // the slave's brokerId (0: not given)
}

func (x helloEpochs) encode() []byte {
	b := make([]byte, helloExt)
	binary.BigEndian.PutUint32(b, uint32(x.epoch))
	binary.BigEndian.PutUint64(b[4:], uint64(x.start))
	binary.BigEndian.PutUint64(b[12:], uint64(x.brokerID))
	return b
}

func readHelloEpochs(r io.Reader) (helloEpochs, error) {
	var b [helloExt]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return helloEpochs{}, err
	}
	x := helloEpochs{epoch: int32(binary.BigEndian.Uint32(b[:])), start: int64(binary.BigEndian.Uint64(b[4:])),
		brokerID: int64(binary.BigEndian.Uint64(b[12:]))}
	if x.epoch < 0 || x.start < 0 || x.brokerID < 0 {
		return helloEpochs{}, fmt.Errorf("ha: bad hello: epoch %d start %d brokerId %d", x.epoch, x.start, x.brokerID)
	}
	return x, nil
}

// replyEpochs is the v2 reply extension: where the slave's last epoch
// ends in the master's history, and the master's epochs after it.
type replyEpochs struct {
	epoch int32 // the newest master epoch ≤ the slave's last epoch (0: none)
	end   int64 // where it ends in the master's log
	later []Entry
}

func (x replyEpochs) encode() []byte {
	b := make([]byte, replyExtHead+len(x.later)*epochEntry)
	be := binary.BigEndian
	be.PutUint32(b, uint32(x.epoch))
	be.PutUint64(b[4:], uint64(x.end))
	be.PutUint32(b[12:], uint32(len(x.later)))
	putEntries(b[replyExtHead:], x.later)
	return b
}

func readReplyEpochs(r io.Reader) (replyEpochs, error) {
	var h [replyExtHead]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return replyEpochs{}, err
	}
	be := binary.BigEndian
	x := replyEpochs{epoch: int32(be.Uint32(h[:])), end: int64(be.Uint64(h[4:]))}
	n := be.Uint32(h[12:])
	if x.epoch < 0 || x.end < 0 || n > MaxEpochs {
		return replyEpochs{}, fmt.Errorf("ha: bad reply: epoch %d end %d, %d epochs", x.epoch, x.end, n)
	}
	b := make([]byte, int(n)*epochEntry)
	if _, err := io.ReadFull(r, b); err != nil {
		return replyEpochs{}, err
	}
	var err error
	if x.later, err = parseEntries(b, int(n)); err != nil {
		return replyEpochs{}, fmt.Errorf("ha: bad reply: %w", err)
	}
	for _, e := range x.later {
		if e.Epoch <= x.epoch || e.Start < x.end {
			return replyEpochs{}, fmt.Errorf("ha: bad reply: epoch %d at %d after epoch %d ending at %d", e.Epoch, e.Start, x.epoch, x.end)
		}
	}
	return x, nil
}

// agree is the master's answer to a slave whose last epoch is epoch: the
// newest epoch of hist not above it, and where that epoch ends in a log
// ending at end (the next epoch's start, or end when it is the last).
// Epoch 0 is the implicit epoch before hist's first entry.
func agree(hist []Entry, end int64, epoch int32) (int32, int64) {
	i := len(hist) - 1
	for i >= 0 && hist[i].Epoch > epoch {
		i--
	}
	var e int32
	if i >= 0 {
		e = hist[i].Epoch
	}
	if i+1 < len(hist) {
		return e, hist[i+1].Start
	}
	return e, end
}

// cutPoint is where a slave with history hist and log end end must cut
// after the master answered (epoch, agreed): the bytes both sides wrote in
// that epoch end at the lower of the two ends of it.
func cutPoint(hist []Entry, end int64, epoch int32, agreed int64) int64 {
	cut := min(end, agreed)
	for _, x := range hist {
		if x.Epoch > epoch {
			return min(cut, x.Start)
		}
	}
	return cut
}

// judgeEpochs is the master's epoch check of a v2 hello: the extension to
// reply with and whether the slave must truncate first. A master with no
// epochs (a statically configured pair) never orders a truncation: the v1
// checks then refuse a diverged slave as before.
func judgeEpochs(hist []Entry, end, minOffset int64, h hello, x helloEpochs) (replyEpochs, bool, error) {
	epoch, agreed := agree(hist, end, x.epoch)
	rep := replyEpochs{epoch: epoch, end: agreed}
	for _, e := range hist {
		if e.Epoch > epoch {
			rep.later = append(rep.later, e)
		}
		if e.Epoch == x.epoch && e.Start != x.start && x.epoch > 0 {
			return rep, false, fmt.Errorf("slave's epoch %d starts at %d, the master's at %d: two histories of one epoch", x.epoch, x.start, e.Start)
		}
	}
	if len(hist) == 0 || (epoch == x.epoch && h.offset <= agreed) {
		return rep, false, nil
	}
	if agreed < minOffset {
		return rep, false, fmt.Errorf("slave must truncate to %d (end of epoch %d), below the master's oldest offset %d (deleted by retention): move the slave's store aside", agreed, epoch, minOffset)
	}
	return rep, true, nil
}
