package filter

import (
	"strconv"
	"strings"
)

type op uint8

const (
	opConst      op = iota // c
	opProp                 // name
	opNeg                  // -x
	opBoolCast             // a property used as a boolean
	opNot                  // NOT x
	opAnd                  // list
	opOr                   // list
	opEq                   // x = y (also IS NULL: y is the NULL constant)
	opCmp                  // x cmp y
	opBetween              // x BETWEEN y AND z
	opNotBetween           // x NOT BETWEEN y AND z
	opIn                   // x [NOT] IN (items | set)
	opContains             // x [NOT] CONTAINS s
	opStartsWith           // x [NOT] STARTSWITH s
	opEndsWith             // x [NOT] ENDSWITH s
)

type cmpOp uint8

const (
	cmpGt cmpOp = iota
	cmpGe
	cmpLt
	cmpLe
)

var cmpNames = [...]string{cmpGt: ">", cmpGe: ">=", cmpLt: "<", cmpLe: "<="}

func cmpOf(k tokKind) cmpOp {
	switch k {
	case tGt:
		return cmpGt
	case tGe:
		return cmpGe
	case tLt:
		return cmpLt
	}
	return cmpLe
}

func (c cmpOp) holds(r int) bool {
	switch c {
	case cmpGt:
		return r > 0
	case cmpGe:
		return r >= 0
	case cmpLt:
		return r < 0
	}
	return r <= 0
}

func textOp(k tokKind) op {
	switch k {
	case tContains:
		return opContains
	case tStartsWith:
		return opStartsWith
	}
	return opEndsWith
}

// node is one expression of the tree.
type node struct {
	op      op
	cmp     cmpOp
	not     bool
	depth   int
	x, y, z *node
	list    []*node
	c       value
	name    string
	s       string
	items   []string            // short IN list
	set     map[string]struct{} // long IN list
}

func (n *node) isConst() bool { return n.op == opConst }

// isBoolean reports whether n is one of Java's BooleanExpressions
// (TRUE, FALSE and NULL literals included).
func (n *node) isBoolean() bool {
	switch n.op {
	case opConst:
		return n.c.k == kNull || n.c.k == kBool
	case opProp, opNeg:
		return false
	}
	return true
}

// String renders n for error messages.
func (n *node) String() string {
	switch n.op {
	case opConst:
		switch n.c.k {
		case kNull:
			return "NULL"
		case kBool:
			return strings.ToUpper(strconv.FormatBool(n.c.b))
		case kString:
			return "'" + strings.ReplaceAll(n.c.s, "'", "''") + "'"
		case kDouble:
			return strconv.FormatFloat(n.c.float(), 'g', -1, 64)
		}
		return strconv.FormatInt(n.c.i, 10)
	case opProp:
		return n.name
	case opNeg:
		return "-" + n.x.String()
	case opBoolCast:
		return n.x.String()
	}
	return "(boolean expression)"
}

// Match reports whether the message whose properties get returns
// matches: the expression evaluates to TRUE without an error. get returns
// a property's value and whether the message has it.
func (e *Expr) Match(get func(name string) (string, bool)) bool {
	v, ok := e.root.eval(get)
	return ok && v.k == kBool && v.b
}

// Result is the outcome of an evaluation.
type Result uint8

const (
	False  Result = iota
	True          // the only result that selects a message
	Null          // unknown (SQL NULL)
	Failed        // Java throws (a property that does not parse as the number it is compared with)
)

func (r Result) String() string { return [...]string{"FALSE", "TRUE", "NULL", "ERROR"}[r] }

// Eval evaluates the expression in full detail (tests and tools).
func (e *Expr) Eval(get func(name string) (string, bool)) Result {
	v, ok := e.root.eval(get)
	switch {
	case !ok:
		return Failed
	case v.k == kNull:
		return Null
	case v.k == kBool && v.b:
		return True
	}
	return False
}

// eval evaluates n; ok is false where Java throws.
func (n *node) eval(get func(string) (string, bool)) (value, bool) {
	switch n.op {
	case opConst:
		return n.c, true
	case opProp:
		if s, ok := get(n.name); ok {
			return value{k: kString, s: s}, true
		}
		return vNull, true
	case opNeg:
		return n.negate(get)
	case opBoolCast:
		v, ok := n.x.eval(get)
		if !ok || v.k == kNull || v.k == kBool {
			return v, ok
		}
		return vFalse, true
	case opNot:
		v, ok := n.x.eval(get)
		if !ok || v.k == kNull {
			return v, ok
		}
		return boolValue(!v.b), true
	case opAnd, opOr:
		return n.logic(get)
	case opEq:
		return n.equal(get)
	case opCmp:
		l, ok := n.x.eval(get)
		if !ok || l.k == kNull {
			return l, ok
		}
		return compareWith(n.cmp, l, n.y, get)
	case opBetween, opNotBetween:
		return n.between(get)
	case opIn:
		return n.in(get)
	}
	return n.text(get)
}

// negate is UnaryExpression.createNegate: numbers change sign (Integer
// and Long wrap as Java's do), anything else is NULL.
func (n *node) negate(get func(string) (string, bool)) (value, bool) {
	v, ok := n.x.eval(get)
	if !ok {
		return v, false
	}
	switch v.k {
	case kInt:
		v.i = int64(-int32(v.i))
	case kLong:
		v.i = -v.i
	case kDouble:
		v = dbl(-v.float())
	default:
		return vNull, true
	}
	return v, true
}

// logic is Java's AND/OR over the flattened operands, left to right:
// AND stops at the first FALSE, OR at the first TRUE; otherwise NULL if
// any operand was NULL. An error stops everything.
func (n *node) logic(get func(string) (string, bool)) (value, bool) {
	stop := n.op == opOr // the value that decides
	res := boolValue(!stop)
	for _, t := range n.list {
		v, ok := t.eval(get)
		if !ok {
			return v, false
		}
		if v.k == kNull {
			res = vNull
		} else if v.b == stop {
			return v, true
		}
	}
	return res, true
}

// equal is ComparisonExpression.doCreateEqual: both sides are evaluated;
// NULL = x is NULL, x = NULL is FALSE, NULL = NULL is TRUE.
func (n *node) equal(get func(string) (string, bool)) (value, bool) {
	l, ok := n.x.eval(get)
	if !ok {
		return l, false
	}
	if n.y.op == opConst && n.y.c.k == kNull { // IS NULL
		return boolValue(l.k == kNull), true
	}
	r, ok := n.y.eval(get)
	if !ok {
		return r, false
	}
	if ln, rn := l.k == kNull, r.k == kNull; ln || rn {
		switch {
		case ln && rn:
			return vTrue, true
		case ln:
			return vNull, true
		}
		return vFalse, true
	}
	c, ok := javaCompare(l, r)
	return boolValue(c == 0), ok
}

// compareWith evaluates "l cmp y" for a non-NULL l, as Java's
// ComparisonExpression.evaluate: NULL if y is NULL; two strings compare
// as doubles.
func compareWith(c cmpOp, l value, y *node, get func(string) (string, bool)) (value, bool) {
	r, ok := y.eval(get)
	if !ok || r.k == kNull {
		return r, ok
	}
	if l.k == kString && r.k == kString {
		lf, ok1 := parseJavaDouble(l.s)
		rf, ok2 := parseJavaDouble(r.s)
		if !ok1 || !ok2 {
			return vNull, false
		}
		l, r = dbl(lf), dbl(rf)
	}
	res, ok := javaCompare(l, r)
	return boolValue(c.holds(res)), ok
}

// between is Java's BETWEEN (x >= y AND x <= z) and NOT BETWEEN (x < y OR
// x > z), with x evaluated once (Java evaluates it twice, with the same
// result).
func (n *node) between(get func(string) (string, bool)) (value, bool) {
	x, ok := n.x.eval(get)
	if !ok {
		return x, false
	}
	if x.k == kString && n.y.op == opConst && n.z.op == opConst && n.y.c.k == n.z.c.k && n.y.c.isNumber() {
		// Both comparisons would parse x as the bounds' class: do it once.
		if x, ok = parseNumber(x.s, n.y.c.k); !ok {
			return vNull, false
		}
	}
	if y, z := n.y, n.z; y.op == opConst && z.op == opConst && x.k == y.c.k && x.k == z.c.k {
		// Constant bounds of x's class: two compareTo calls, no NULL
		// possible, and NOT BETWEEN is the exact negation.
		c1, _ := javaCompare(x, y.c)
		c2, _ := javaCompare(x, z.c)
		return boolValue((c1 >= 0 && c2 <= 0) != (n.op == opNotBetween)), true
	}
	lo, hi, stop := cmpGe, cmpLe, false
	if n.op == opNotBetween {
		lo, hi, stop = cmpLt, cmpGt, true
	}
	r1, ok := x, true
	if x.k != kNull {
		if r1, ok = compareWith(lo, x, n.y, get); !ok {
			return r1, false
		}
	}
	if r1.k != kNull && r1.b == stop {
		return r1, true
	}
	r2 := x
	if x.k != kNull {
		if r2, ok = compareWith(hi, x, n.z, get); !ok {
			return r2, false
		}
	}
	switch {
	case r2.k != kNull && r2.b == stop:
		return r2, true
	case r1.k == kNull || r2.k == kNull:
		return vNull, true
	}
	return boolValue(!stop), true
}

// in is Java's IN / NOT IN: NULL unless the property is a string.
func (n *node) in(get func(string) (string, bool)) (value, bool) {
	v, ok := n.x.eval(get)
	if !ok || v.k != kString {
		return vNull, ok
	}
	found := false
	if n.set != nil {
		_, found = n.set[v.s]
	} else {
		for _, s := range n.items {
			if s == v.s {
				found = true
				break
			}
		}
	}
	return boolValue(found != n.not), true
}

// text is CONTAINS / STARTSWITH / ENDSWITH and their NOT forms: FALSE for
// an empty search string (before evaluating anything), a NULL or a
// non-string operand.
func (n *node) text(get func(string) (string, bool)) (value, bool) {
	if n.s == "" {
		return vFalse, true
	}
	v, ok := n.x.eval(get)
	if !ok {
		return v, false
	}
	if v.k != kString {
		return vFalse, true
	}
	var hit bool
	switch n.op {
	case opContains:
		hit = strings.Contains(v.s, n.s)
	case opStartsWith:
		hit = strings.HasPrefix(v.s, n.s)
	default:
		hit = strings.HasSuffix(v.s, n.s)
	}
	return boolValue(hit != n.not), true
}
