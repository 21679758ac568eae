package filter

import (
	"strings"
	"testing"
)

// FuzzCompile: compiling any text never panics and respects the bounds;
// a compiled expression evaluates without panicking, consistently.
func FuzzCompile(f *testing.F) {
	for _, c := range evalCases {
		f.Add(c.expr)
	}
	for _, s := range badExprs {
		f.Add(s)
	}
	f.Add(strings.Repeat("(", 80) + "a" + strings.Repeat(")", 80))
	f.Add("-(-(a BETWEEN 1 AND 2) BETWEEN 1 AND 2) IS NULL")
	envs := []props{
		{},
		{"a": "1", "b": "x", "c": "2.5", "TAGS": "TagA"},
		{"a": "abc", "b": "", "c": "NaN", "value": "axb"},
		{"a": "-2147483648", "b": "9223372036854775807", "c": "true"},
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Compile(src)
		if err != nil {
			if e != nil {
				t.Fatal("expression and error")
			}
			return
		}
		if e.nodes > MaxNodes || e.root.depth > MaxDepth {
			t.Fatalf("bounds exceeded: %d nodes, depth %d", e.nodes, e.root.depth)
		}
		if !strings.HasSuffix(src, e.Ignored()) {
			t.Fatalf("ignored %q is not a suffix", e.Ignored())
		}
		for _, p := range envs {
			if (e.Eval(p.get) == True) != e.Match(p.get) {
				t.Fatal("Eval and Match disagree")
			}
		}
	})
}

// FuzzEvalValues: any property values (numbers in every Java form, junk)
// evaluate without panicking under expressions that parse them.
func FuzzEvalValues(f *testing.F) {
	for _, s := range []string{"1", "-2147483648", "9223372036854775808", "1e400", "0x1p3", " 2.5f ", "NaN", "-Infinity",
		"+", "", "true", "0x", "1e", ".", "\x00", "é"} {
		f.Add(s, s)
	}
	exprs := []string{
		"a = 1", "a > 1.5", "a BETWEEN -5 AND 3000000000", "a NOT BETWEEN 1.5 AND 2", "a = TRUE", "a < b",
		"a = b", "a IN ('1', 'x')", "a CONTAINS '1'", "-a > 1", "a IS NULL OR b = 2", "a >= 1L AND b <= 2.5E3",
	}
	compiled := make([]*Expr, len(exprs))
	for i, s := range exprs {
		e, err := Compile(s)
		if err != nil {
			f.Fatal(err)
		}
		compiled[i] = e
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		p := props{"a": a, "b": b}
		for _, e := range compiled {
			if (e.Eval(p.get) == True) != e.Match(p.get) {
				t.Fatalf("%s: Eval and Match disagree", e)
			}
		}
	})
}
