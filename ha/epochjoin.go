package ha

// The epoch steps of the join, on both sides (truncate.go has the
// computations, FORMAT.md §1-2 the wire).

import (
	"fmt"
	"log/slog"
	"net"
)

// epochHello reads a v2 hello's extension and judges it against this
// master's history. done means a refusal or a truncation order was sent
// and the connection ends; otherwise ext is the extension of the OK reply
// and id the slave's brokerId.
func (s *Server) epochHello(c net.Conn, h hello, log *slog.Logger) (ext []byte, id int64, done bool) {
	x, err := readHelloEpochs(c)
	if err != nil {
		log.Warn("ha: bad slave hello", "err", err)
		return nil, 0, true
	}
	end := s.src.WrittenOffset()
	rep, trunc, err := judgeEpochs(s.cfg.Epochs.Entries(), end, s.src.MinPhysOffset(), h, x)
	if err != nil {
		log.Error("ha: refusing slave", "err", err)
		c.Write(reply{status: statusRefuse, masterEnd: end, remark: err.Error()}.encode())
		return nil, 0, true
	}
	if trunc {
		log.Warn("ha: slave's log goes beyond the history it shares with this master; it must truncate",
			"slaveEnd", h.offset, "slaveEpoch", x.epoch, "epoch", rep.epoch, "at", rep.end)
		msg := fmt.Sprintf("the slave's epoch %d ends at %d in the master's history (the slave's log ends at %d)", x.epoch, rep.end, h.offset)
		c.Write(append(reply{status: statusTrunc, masterEnd: end, remark: msg}.encode(), rep.encode()...))
		return nil, 0, true
	}
	return rep.encode(), x.brokerID, false
}

// epochHello is the slave's hello with its last epoch.
func (c *Client) epochHello(h hello) []byte {
	last := c.cfg.Epochs.Last()
	h.version = versionEpochs
	return append(h.encode(), helloEpochs{epoch: last.Epoch, start: last.Start, brokerID: c.cfg.BrokerID}.encode()...)
}

// epochReply reads the master's extension after a reply that is not a
// refusal: a truncation order becomes a *TruncateError; an acceptance
// records the master's later epochs before any of their bytes arrive.
func (c *Client) epochReply(conn net.Conn, rep reply, addr string, from int64) error {
	x, err := readReplyEpochs(conn)
	if err != nil {
		return err
	}
	if rep.status == statusTrunc {
		at := cutPoint(c.cfg.Epochs.Entries(), from, x.epoch, x.end)
		return &TruncateError{At: at, LogEnd: from, Epoch: x.epoch, Master: addr, Message: rep.remark}
	}
	if rep.status != statusOK {
		return fmt.Errorf("ha: master %s answered status %d", addr, rep.status)
	}
	last := c.cfg.Epochs.Last()
	for _, e := range x.later {
		if e.Epoch <= last.Epoch {
			continue
		}
		if e.Start < from {
			return fmt.Errorf("%w: master's epoch %d starts at %d, inside this slave's log (end %d) of epoch %d", ErrRefused, e.Epoch, e.Start, from, last.Epoch)
		}
		if err := c.cfg.Epochs.Begin(e.Epoch, e.Start); err != nil {
			return err
		}
		c.log.Info("ha: recorded the master's epoch", "epoch", e.Epoch, "start", e.Start)
	}
	return nil
}
