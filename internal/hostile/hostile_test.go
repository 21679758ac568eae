package hostile

import (
	"testing"
	"time"
)

// maxGrowth bounds how far above its RSS before an attack mqd's peak RSS
// (VmHWM) may go during it. 64 MiB: the largest frame an attack sends is
// 4 MiB and a normal request's working set (decoded frame, a response, the
// store's write buffers) stays within a few times that, while each attack
// in the catalogue cost ≥ 290 MB before its fix (SECURITY.md). The bound
// counts peak, not final, memory, so a transient gigabyte that is freed
// again still fails.
const maxGrowth = 64 << 20

// attack is one entry of the catalogue.
type attack struct {
	name string
	// run mounts the attack against m and returns a release func that
	// ends it (closes its connections); memory is read between the two.
	// run may assert attack-specific effects with t.Errorf.
	run func(t *testing.T, m *mqd) (release func())
}

func TestHostileFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mqd processes (~30 s); run without -short")
	}
	for _, a := range catalogue {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel() // one process per attack: measurements do not mix
			replay(t, a)
		})
	}
}

// replay runs one attack against a fresh mqd and checks the catalogue's
// three assertions.
func replay(t *testing.T, a attack) {
	m := startMqd(t)
	m.checkServes("before the attack")
	m.settle(500*time.Millisecond, 5*time.Second)
	before := m.memory()
	start := time.Now()
	release := a.run(t, m)
	m.settle(500*time.Millisecond, 3*time.Second)
	during := m.memory()
	release()
	growth := during.hwm - before.rss
	t.Logf("%s: RSS %d MiB before, %d MiB after, peak %d MiB (+%d MiB) in %v", a.name,
		before.rss>>20, during.rss>>20, during.hwm>>20, growth>>20, time.Since(start).Round(time.Millisecond))
	t.Logf("anon %d -> %d MiB, file %d -> %d MiB", before.anon>>20, during.anon>>20, before.file>>20, during.file>>20)
	if growth > maxGrowth {
		t.Errorf("%s: peak RSS grew by %d MiB, bound %d MiB", a.name, growth>>20, maxGrowth>>20)
	}
	phase := time.Now()
	m.checkServes("after the attack")
	served := time.Since(phase)
	m.stop()
	stopped := time.Since(phase)
	m.launch()
	m.checkServes("after a restart")
	t.Logf("checks after the attack %v, stop %v, start and checks %v", served.Round(time.Millisecond),
		(stopped - served).Round(time.Millisecond), (time.Since(phase) - stopped).Round(time.Millisecond))
}
