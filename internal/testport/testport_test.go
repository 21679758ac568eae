package testport

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

const childEnv = "TESTPORT_CHILD"

// TestChild prints the ports a second process is given, while its parent
// holds its own block.
func TestChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestProcessesNeverShare")
	}
	firstTry = func() int { return 0 } // the parent holds block 0
	var out []string
	for range 20 {
		out = append(out, strconv.Itoa(Free(t)))
	}
	os.Stdout.WriteString("ports " + strings.Join(out, " ") + "\n")
}

func TestFreeHoldsNeighbour(t *testing.T) {
	seen := map[int]bool{}
	for range 40 { // more than one block
		p := Free(t)
		if p < firstPort || p+1 >= lastPort {
			t.Fatalf("port %d outside [%d,%d)", p, firstPort, lastPort)
		}
		if seen[p] || seen[p+1] {
			t.Fatalf("port %d or a neighbour handed out twice", p)
		}
		seen[p], seen[p+1] = true, true
		if !bindable(p) || !bindable(p+1) {
			t.Fatalf("port %d or %d not bindable", p, p+1)
		}
	}
}

func TestProcessesNeverShare(t *testing.T) {
	// Hold block 0, the block the child tries first.
	firstTry = func() int { return 0 }
	mu.Lock()
	err := lockBlock()
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if next != firstPort {
		t.Skipf("block 0 is held by another process (next %d)", next)
	}
	mine := map[int]bool{}
	for range 40 {
		p := Free(t)
		mine[p], mine[p+1] = true, true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var got int
	for _, line := range strings.Split(string(out), "\n") {
		f, ok := strings.CutPrefix(line, "ports ")
		if !ok {
			continue
		}
		for _, s := range strings.Fields(f) {
			p, _ := strconv.Atoi(s)
			got++
			if mine[p] || mine[p+1] {
				t.Errorf("child was given port %d, which this process holds", p)
			}
			// Blocks are whole: a port of a block this process holds
			// would show as being in one of our blocks.
			for q := range mine {
				if (q-firstPort)/blockSize == (p-firstPort)/blockSize {
					t.Fatalf("child was given port %d, in this process's block of %d", p, q)
				}
			}
		}
	}
	if got != 20 {
		t.Fatalf("child printed %d ports, want 20:\n%s", got, out)
	}
}
