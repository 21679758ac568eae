package index

// Recovery after an abnormal exit (FORMAT.md, "Crash walk-through").
//
// Index files are written through a mapping, so a crash may leave any mix
// of pages written after the last msync: a header whose endPhyOffset is
// ahead of entries that never reached the disk (Put would then skip their
// messages on redispatch and the keys would be lost for good), or a slot
// pointing at a lost entry (cutting off the older, durable entries of that
// slot). RecoverFrom repairs this from one fact: every message below the
// engine's checkpointed dispatched offset was indexed and msynced. It keeps
// exactly the entries of those messages and rebuilds the slot chains from
// them, so that the redispatch from that offset indexes every key again,
// once.

// RecoverFrom drops every entry of a message at or after durable (the
// checkpoint's dispatched offset) and rebuilds the hash chains of the
// files it touched. It walks files newest first: a file left without
// entries is removed, and the walk stops at the first file that keeps
// entries (older files were complete and msynced before it was written).
// Called by the engine after an abnormal exit, before dispatch starts. It
// returns how many entries it dropped.
func (s *Service) RecoverFrom(durable int64) (int, error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	dropped := 0
	var gone []*file
	for len(s.files) > 0 {
		f := s.files[len(s.files)-1]
		before := f.h.count
		kept := f.rebuild(durable)
		dropped += int(max(before, kept) - kept)
		if kept > 1 {
			break
		}
		gone = append(gone, f)
		s.files = s.files[:len(s.files)-1]
	}
	s.mu.Unlock()
	if err := s.deleteFiles(gone); err != nil {
		return dropped, err
	}
	return dropped, nil
}

// rebuild keeps the entries of x, from the first, while they are entries
// of messages below durable in commit-log order (a zeroed, lost entry or a
// later message ends them), rewrites the slots and chain links from the
// kept entries alone, and fixes the header. It returns the new indexCount
// (1: no entry kept). Called with Service.mu held.
func (x *file) rebuild(durable int64) int32 {
	n, last, lastDiff := int32(1), int64(-1), int32(0)
	for ; n < x.lay.maxIndex; n++ {
		p := x.lay.entryPos(n)
		e := x.b[p : p+EntrySize]
		phy, diff := int64(be.Uint64(e[4:])), x.getInt32(p+12)
		if allZero(e) || phy < last || phy >= durable || diff < 0 {
			break
		}
		last, lastDiff = phy, diff
	}
	clear(x.b[HeaderSize:x.lay.entryPos(0)])
	x.h.slotCount = 0
	for i := int32(1); i < n; i++ {
		p := x.lay.entryPos(i)
		sp := x.lay.slotPos(x.getInt32(p))
		prev := x.getInt32(sp)
		if prev == 0 {
			x.h.slotCount++
		}
		be.PutUint32(x.b[p+16:], uint32(prev))
		be.PutUint32(x.b[sp:], uint32(i))
	}
	x.h.count = n
	if n > 1 {
		x.h.endPhy = last
		x.h.endTs = x.h.beginTs + int64(lastDiff)*1000 + 999 // index times have second resolution
	}
	x.h.encode(x.b)
	x.dirty = true
	return n
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// has reports whether x indexes hash at phy (a redispatched message whose
// keys were partly indexed before a crash). Called with Service.mu held.
func (x *file) has(hash int32, phy int64) bool {
	n := x.getInt32(x.lay.slotPos(hash))
	for steps := 0; n > 0 && n < x.h.count && steps < int(x.lay.maxIndex); steps++ {
		p := x.lay.entryPos(n)
		if at := int64(be.Uint64(x.b[p+4:])); at < phy {
			return false
		} else if at == phy && x.getInt32(p) == hash {
			return true
		}
		prev := x.getInt32(p + 16)
		if prev >= n {
			return false
		}
		n = prev
	}
	return false
}
