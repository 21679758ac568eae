package index

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqd/mqd/internal/vfs"
)

// indexBackends are the file layers the index runs on (both map files).
func indexBackends(t *testing.T) map[string]vfs.FS {
	out := map[string]vfs.FS{"pwrite": vfs.Default()}
	if u, err := vfs.NewUring(8); err == nil {
		t.Cleanup(func() { u.Close() })
		out["io_uring"] = u
	}
	return out
}

// TestRecoverReindexesLostKeys simulates a crash after which the header
// and slot pages of the index file reached the disk but the entry pages
// written since the last msync did not: the header's endPhyOffset is ahead
// of the entries and the slots point at zeroed entries. RecoverFrom(the
// durable point) and a redispatch from it must leave every key findable:
// the keys of redispatched messages, and the older durable keys whose
// chains the lost entries cut.
func TestRecoverReindexesLostKeys(t *testing.T) {
	for name, fsys := range indexBackends(t) {
		t.Run(name, func(t *testing.T) {
			const durableN, total = 20, 50
			dir := t.TempDir()
			s, err := Open(fsys, dir, small(7, 400))
			if err != nil {
				t.Fatal(err)
			}
			ts := func(i int) int64 { return t0 + int64(i)*1000 }
			for i := 0; i < durableN; i++ {
				put(t, s, "T", int64(i)*100, ts(i), "k", fmt.Sprint("u", i))
			}
			if _, err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			s.mu.RLock()
			f := s.files[len(s.files)-1]
			lostFrom := f.lay.entryPos(f.h.count) // entries written after the msync
			s.mu.RUnlock()
			for i := durableN; i < total; i++ {
				put(t, s, "T", int64(i)*100, ts(i), "k", fmt.Sprint("u", i))
			}
			// the crash: everything reached the disk but those entries
			s.mu.RLock()
			img := append([]byte(nil), f.b...)
			end := f.lay.entryPos(f.h.count)
			s.mu.RUnlock()
			clear(img[lostFrom:end])
			crashed := t.TempDir()
			if err := os.WriteFile(filepath.Join(crashed, f.name), img, 0o644); err != nil {
				t.Fatal(err)
			}
			s.Close()

			s, err = Open(fsys, crashed, small(7, 400))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			durable := int64(durableN) * 100
			if n, err := s.RecoverFrom(durable); err != nil || n == 0 {
				t.Fatalf("RecoverFrom = %d, %v", n, err)
			}
			if s.EndPhyOffset() >= durable {
				t.Fatalf("endPhyOffset %d not below the durable point %d", s.EndPhyOffset(), durable)
			}
			for i := 0; i < total; i++ { // redispatch from before the durable point
				if int64(i)*100 >= durable-300 {
					put(t, s, "T", int64(i)*100, ts(i), "k", fmt.Sprint("u", i))
				}
			}
			var all []int64
			for i := 0; i < total; i++ {
				expect(t, query(t, s, "T", fmt.Sprint("u", i), 64, 0, ts(total)), int64(i)*100)
				all = append(all, int64(i)*100)
			}
			expect(t, query(t, s, "T", "k", 64, 0, ts(total)), all...) // the shared key reaches every message
		})
	}
}
