package filter

import (
	"math"
	"strings"
	"testing"
)

// props is a message's properties; a missing key is a missing property.
type props map[string]string

func (p props) get(name string) (string, bool) {
	v, ok := p[name]
	return v, ok
}

// The expected results follow Java's expression classes (Java's the filter's expression classes and
// the broker's ExpressionTest cases), quirks included.
var evalCases = []struct {
	expr string
	p    props
	want Result
}{
	// comparisons on numbers: the property is parsed as the literal's class
	{"a = 3", props{"a": "3"}, True},
	{"a = 3", props{"a": "4"}, False},
	{"a = 3", props{"a": "+3"}, True},
	{"a = 3", props{"a": "03"}, True},
	{"a = 3", props{"a": "3.0"}, Failed}, // Integer.valueOf("3.0") throws
	{"a = 3", props{"a": " 3"}, Failed},  // Integer.valueOf does not trim
	{"a = 3.0", props{"a": "3"}, True},   // Double.valueOf("3")
	{"a = 3.0", props{"a": " 3 "}, True}, // Double.valueOf trims
	{"a = 3.0", props{"a": "3d"}, True},  // ... and takes a type suffix
	{"a = 3", props{"a": "abc"}, Failed},
	{"a > 5", props{"a": "3000000000"}, Failed},  // not an Integer
	{"a > 5L", props{"a": "3000000000"}, Failed}, // 5L is still an Integer
	{"a > 3000000000", props{"a": "3000000001"}, True},
	{"a > 3000000000", props{"a": "5"}, False},
	{"a < -2147483648", props{"a": "-2147483649"}, True}, // the literal is a Long
	{"a <> 4", props{"a": "3"}, True},
	{"a <> 4", props{"a": "4"}, False},
	{"a >= 3 AND a <= 3", props{"a": "3"}, True},
	{"a > 3.1E10", props{"a": "31415000000"}, True},
	{"a > 3.14", props{"a": "3.1415"}, True},
	{"a > .5", props{"a": "0.6"}, True},
	{"a > 5.", props{"a": "6"}, True},
	{"a > 1.5", props{"a": "NaN"}, True}, // Double.compare puts NaN above everything
	{"a < 1.5", props{"a": "-Infinity"}, True},
	{"a = 1.5", props{"a": "0x1.8p0"}, True},
	{"a > -5", props{"a": "-4"}, True},
	{"a > - -5", props{"a": "6"}, True},
	{"a > +5", props{"a": "6"}, True},
	// two properties: "=" compares strings, ">" & co. compare doubles
	{"a = b", props{"a": "3.14", "b": "3.14"}, True},
	{"a = b", props{"a": "3.0", "b": "3"}, False},
	{"a <> b", props{"a": "3.14", "b": "3.141"}, True},
	{"a > b", props{"a": "10", "b": "20"}, False},
	{"a > b", props{"a": "20", "b": "10"}, True},
	{"a >= b", props{"a": "3.0", "b": "3"}, True},
	{"a > b", props{"a": "x", "b": "1"}, Failed},
	// strings
	{"a = 'hello'", props{"a": "hello"}, True},
	{"a = 'hello'", props{"a": "Hello"}, False},
	{"a = 'it''s'", props{"a": "it's"}, True},
	{"a = ''", props{"a": ""}, True},
	{"TAGS = '''''tag'''''", props{"TAGS": "''tag''"}, True},
	// booleans: the string side goes through Boolean.valueOf
	{"a = TRUE OR b = FALSE", props{"a": "true", "b": "false"}, True},
	{"a = TRUE OR b = FALSE", props{"a": "false", "b": "true"}, False},
	{"a = TRUE", props{"a": "TRUE"}, True},
	{"a = TRUE", props{"a": "yes"}, False},
	{"'true' = TRUE", props{}, True},
	{"TRUE = a", props{"a": "true"}, Failed}, // Java casts the Boolean to String
	{"TRUE = a", props{}, False},
	{"1 = TRUE", props{}, False},
	{"TRUE", props{}, True},
	{"FALSE", props{}, False},
	{"NULL", props{}, Null},
	{"NOT FALSE", props{}, True},
	// a property used as a boolean is FALSE unless missing
	{"a", props{"a": "true"}, False},
	{"a", props{}, Null},
	{"a OR TRUE", props{"a": "x"}, True},
	{"NOT a", props{"a": "x"}, True},
	{"NOT a = 1", props{"a": "1"}, False}, // (NOT a) = 1: Boolean vs Integer
	{"NOT (a = 1)", props{"a": "1"}, False},
	// missing properties: NULL, and the asymmetry of "="
	{"a = 'x'", props{}, Null},
	{"'x' = a", props{}, False},
	{"NOT ('x' = a)", props{}, True},
	{"a <> 'x'", props{}, Null},
	{"'x' <> a", props{}, True},
	{"a > 1", props{}, Null},
	{"1 < a", props{}, Null},
	{"a = b", props{}, True}, // NULL = NULL is TRUE (how IS NULL works)
	{"a = b", props{"a": "1"}, False},
	{"-a > 1", props{"a": "5"}, Null}, // negating a string is NULL
	// IS [NOT] NULL
	{"a IS NULL", props{"abc": "2"}, True},
	{"a IS NULL", props{"a": "2"}, False},
	{"a IS NOT NULL", props{"a": "2"}, True},
	{"a IS NOT NULL", props{"abc": "2"}, False},
	{"a is null OR a='hello'", props{}, True},
	{"a is null OR a='hello'", props{"a": "hello"}, True},
	{"a is null OR a='hello'", props{"a": "abc"}, False},
	{"a is not null and a='hello'", props{}, False},
	{"NULL IS NULL", props{}, True},
	// three-valued logic and its short circuits
	{"a = 1 AND b = 2", props{"b": "2"}, Null},
	{"a = 1 AND b = 2", props{"b": "3"}, False},
	{"a = 1 OR b = 2", props{"b": "2"}, True},
	{"a = 1 OR b = 2", props{"b": "3"}, Null},
	{"NOT (a = 1)", props{}, Null},
	{"a = 1 OR b = 2", props{"a": "1", "b": "x"}, True},   // b never evaluated
	{"a = 1 OR b = 2", props{"a": "2", "b": "x"}, Failed}, // an error fails everything
	{"a = 1 AND b = 2", props{"a": "2", "b": "x"}, False}, // b never evaluated
	{"b = 2 OR a = 1", props{"a": "1", "b": "x"}, Failed}, // b first
	{"(a = 1 OR b = 1) AND (c = 1 OR d = 1)", props{"b": "1", "d": "1"}, True},
	{"a=3 and b<>4 And c>5 AND d<=4", props{"a": "3", "b": "5", "c": "6", "d": "1"}, True},
	{"a=3 and b<>4 And c>5 AND d<=4", props{"a": "4", "b": "5", "c": "6", "d": "1"}, False},
	{"a=3 or b<>4 Or c>5 OR d<=4", props{"a": "4", "b": "4", "c": "3", "d": "2"}, True},
	{"a=3 or b<>4 Or c>5 OR d<=4", props{"a": "4", "b": "4", "c": "3", "d": "10"}, False},
	// BETWEEN
	{"a BETWEEN 0 AND 3", props{"a": "0"}, True},
	{"a BETWEEN 0 AND 3", props{"a": "3"}, True},
	{"a BETWEEN 0 AND 3", props{"a": "4"}, False},
	{"a BETWEEN 0 AND 3", props{"a": "-1"}, False},
	{"a BETWEEN 0 AND 3", props{}, Null},
	{"a BETWEEN 0 AND 3", props{"a": "abc"}, Failed},
	{"a between 2 and 10", props{"a": "10"}, True},
	{"a not between 2 and 10", props{"a": "1"}, True},
	{"a not between 2 and 10", props{"a": "11"}, True},
	{"a not between 2 and 10", props{"a": "2"}, False},
	{"a not between 2 and 10", props{}, Null},
	{"a BETWEEN 1 AND 2.5", props{"a": "2"}, True},
	{"a BETWEEN b AND c", props{"a": "2"}, Null},
	{"a BETWEEN b AND c", props{"a": "2", "b": "1", "c": "3"}, True},
	{"a between up and low", props{"a": "3.14", "up": "up", "low": "low"}, Failed},
	{"key is not null and key between 0 and 100", props{"key": "con"}, Failed},
	// IN
	{"a in ('3', '4', '5')", props{"a": "4"}, True},
	{"a in ('3', '4', '5')", props{"a": "8"}, False},
	{"a in ('3', '4', '5')", props{}, Null},
	{"a not in ('3', '4', '5')", props{"a": "8"}, True},
	{"a not in ('3', '4', '5')", props{"a": "3"}, False},
	{"a not in ('3', '4', '5')", props{}, Null},
	{"a IN ('1','2','3','4','5','6','7','8','9','10')", props{"a": "9"}, True},
	{"a IN ('1','2','3','4','5','6','7','8','9','10')", props{"a": "11"}, False},
	{"(a) IN ('x')", props{"a": "x"}, True},
	// CONTAINS, STARTSWITH, ENDSWITH (5.x)
	{"value contains 'x'", props{"value": "axb"}, True},
	{"value startswith 'ax'", props{"value": "axb"}, True},
	{"value endswith 'xb'", props{"value": "axb"}, True},
	{"value not contains 'x'", props{"value": "axb"}, False},
	{"value not startswith 'x'", props{"value": "axb"}, True},
	{"value not endswith 'x'", props{"value": "axb"}, True},
	{"value contains ''", props{"value": "axb"}, False},
	{"value not contains ''", props{"value": "axb"}, False},
	{"value contains 'x'", props{}, False},
	{"value not contains 'x'", props{}, False},
	{"NOT (value contains 'x')", props{}, True},
	{"'axb' contains 'x'", props{}, True},
	{"5 contains '5'", props{}, False},
	{"' ' startswith ' '", props{}, True},
	{"a not in ('4', '4', '5') and b between 3 and 10 and c not contains 'axbc'",
		props{"a": "3", "b": "3", "c": "axbdc"}, True},
	// TAGS is just a property
	{"TAGS = 'TagA' AND a BETWEEN 0 AND 3", props{"TAGS": "TagA", "a": "1"}, True},
	{"TAGS IN ('TagA', 'TagB')", props{"TAGS": "TagC"}, False},
	{"TAGS IS NULL", props{"a": "1"}, True},
	// keywords are case-insensitive, property names are not
	{"A = 1", props{"a": "1"}, Null},
	{"a Is NoT nUlL", props{"a": "1"}, True},
	// comments
	{"a = 1 /* one */ AND /* two */ b = 2", props{"a": "1", "b": "2"}, True},
	{"a = 1 -- line\n AND b = 2", props{"a": "1", "b": "2"}, True},
	{"a = --5", props{"a": "5"}, True}, // no newline: two minus signs
	// Java ignores what follows a complete expression
	{"a = 1 b = 2", props{"a": "1"}, True},
	{"a = 007", props{"a": "0"}, True}, // "0" then "07", ignored
	{"a = 1 )", props{"a": "1"}, True},
	// comparisons of comparisons
	{"(a = 1) = (b = 2)", props{"a": "1", "b": "2"}, True},
	{"a = 1 = TRUE", props{"a": "1"}, True},
	{"-(a = 1) IS NULL", props{"a": "1"}, True},
}

func TestEval(t *testing.T) {
	for _, c := range evalCases {
		e, err := Compile(c.expr)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if got := e.Eval(c.p.get); got != c.want {
			t.Errorf("%q with %v = %v, want %v", c.expr, c.p, got, c.want)
		}
		if got := e.Match(c.p.get); got != (c.want == True) {
			t.Errorf("%q with %v: Match = %v", c.expr, c.p, got)
		}
	}
}

var badExprs = []string{
	"",
	"   ",
	"a and between 2 and 10",
	" a between 10 and 0",
	"a between 'a' and 'b'", // string bounds cannot be compared
	"a between 1 and 'x'",
	"a between NULL and 1",
	"a > 100000000000000000000000",
	"a > 9223372036854775808",
	"a > -9223372036854775808", // the literal is parsed before the sign
	"a > 0.0",                  // Java rejects float literals below Double.MIN_VALUE
	"a > 1e400",
	"a > 1e-400",
	"a = NULL",
	"NULL = a",
	"a <> NULL",
	"TRUE = 1",
	"TRUE = 'x'",
	"a > 'x'",
	"'x' < a",
	"a > TRUE",
	"(a = 1) > 2",
	"a > (b = 1)",
	"'x' IN ('x')",
	"a = 1 IN ('x')",
	"a IN ()",
	"a IN (1, 2)",
	"a IN ('x',)",
	"a NOT = 1",
	"a NOT LIKE 'x'",
	"a LIKE 'x'", // LIKE is an identifier: "a" is complete, then "LIKE" is ignored... but a alone is fine
	"1",
	"'x'",
	"-1",
	"a = 1 AND 1",
	"a = 1 OR 'x'",
	"NOT 1",
	"a IS 1",
	"a IS NOT 1",
	"a CONTAINS b",
	"a CONTAINS",
	"a == 1",
	"a != 1",
	"a = 'unterminated",
	"a = 1 /* unterminated",
	"a = 1 #",
	"a = 1 && b = 2",
	"a.b = 1",
	"(a = 1",
	"a = (1",
	"a = .",
	"a = 1e",
	"a = 0L",
	"é = 1",
	"a = 1 /",
}

func TestCompileErrors(t *testing.T) {
	for _, src := range badExprs {
		e, err := Compile(src)
		if src == "a LIKE 'x'" {
			// Java compiles this: the property "a" is a complete
			// expression and "LIKE 'x'" is never read.
			if err != nil || e.Ignored() != "LIKE 'x'" {
				t.Errorf("%q: %v, ignored %q", src, err, e.Ignored())
			}
			continue
		}
		if src == "a = 1e" || src == "a = 0L" {
			// "1" then the identifier "e" / "0" then "L": ignored.
			if err != nil || e.Ignored() == "" {
				t.Errorf("%q: %v", src, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q compiled", src)
			continue
		}
		if _, ok := err.(*Error); !ok {
			t.Errorf("%q: error %T", src, err)
		}
	}
}

func TestIgnoredTail(t *testing.T) {
	for src, want := range map[string]string{
		"a = 1":             "",
		"a = 1 b = 2":       "b = 2",
		"a = 1 -- comment":  "-- comment",
		"a = 1 ) garbage #": ") garbage #",
		"a + 1":             "+ 1", // no arithmetic: "a" is complete
		"a-b = 1":           "-b = 1",
	} {
		e, err := Compile(src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if e.Ignored() != want {
			t.Errorf("%q: ignored %q, want %q", src, e.Ignored(), want)
		}
		if e.String() != src {
			t.Errorf("String() = %q", e.String())
		}
	}
}

func TestBounds(t *testing.T) {
	deep := strings.Repeat("(", MaxDepth+1) + "a = 1" + strings.Repeat(")", MaxDepth+1)
	nots := strings.Repeat("NOT ", MaxDepth+1) + "a"
	negs := "a > " + strings.Repeat("-", MaxDepth+1) + "1"
	chain := "a" + strings.Repeat(" = 1", MaxDepth+1)
	many := "a = 1" + strings.Repeat(" OR a = 1", MaxNodes)
	var in strings.Builder
	in.WriteString("a IN ('0'")
	for i := 0; i < MaxInItems; i++ {
		in.WriteString(",'1'")
	}
	in.WriteString(")")
	long := "a = '" + strings.Repeat("x", MaxLength) + "'"
	for name, src := range map[string]string{"parens": deep, "nots": nots, "negations": negs, "chain": chain,
		"terms": many, "in": in.String(), "length": long} {
		if _, err := Compile(src); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
	// Long flat chains are fine: AND/OR lists do not nest.
	ok := "a = 1" + strings.Repeat(" AND b = 2", 1000)
	if _, err := Compile(ok); err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(strings.Repeat("(", MaxDepth-1) + "a = 1" + strings.Repeat(")", MaxDepth-1)); err != nil {
		t.Fatal(err)
	}
}

func TestJavaNumberParsing(t *testing.T) {
	ints := map[string]bool{"0": true, "-0": true, "+7": true, "2147483647": true, "-2147483648": true,
		"2147483648": false, "-2147483649": false, "": false, "-": false, "+": false, "1 ": false, "1.0": false, "0x1": false}
	for s, ok := range ints {
		if _, got := parseJavaInt(s, 32); got != ok {
			t.Errorf("Integer.valueOf(%q) ok=%v", s, got)
		}
	}
	if n, ok := parseJavaInt("-9223372036854775808", 64); !ok || n != -1<<63 {
		t.Errorf("Long.MIN_VALUE: %d %v", n, ok)
	}
	if _, ok := parseJavaInt("9223372036854775808", 64); ok {
		t.Error("Long overflow accepted")
	}
	doubles := map[string]float64{"1": 1, " 1.5 ": 1.5, "-2": -2, "+.5": 0.5, "5.": 5, "1e3": 1000, "1E+3": 1000,
		"2.5f": 2.5, "2D": 2, "0x1p4": 16, "-0x1.8p1": -3, "1e400": math.Inf(1)}
	for s, want := range doubles {
		if f, ok := parseJavaDouble(s); !ok || f != want {
			t.Errorf("Double.valueOf(%q) = %v %v, want %v", s, f, ok, want)
		}
	}
	for _, s := range []string{"", ".", "e1", "1e", "1e+", "0x1", "0xp1", "1_0", "inf", "nan", "1.5x", "--1", "1 2"} {
		if _, ok := parseJavaDouble(s); ok {
			t.Errorf("Double.valueOf(%q) accepted", s)
		}
	}
}

func TestEvalDoesNotAllocate(t *testing.T) {
	e, err := Compile("a BETWEEN 0 AND 3 AND b IN ('x', 'y') AND c IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	p := props{"a": "2", "b": "y", "TAGS": "T"}
	allocs := testing.AllocsPerRun(100, func() {
		if !e.Match(p.get) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per evaluation", allocs)
	}
}
