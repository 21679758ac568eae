package filter

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Bounds on hostile expressions (Java has none).
const (
	MaxLength  = 64 << 10 // bytes of expression text
	MaxDepth   = 64       // nesting: parentheses and unary operators while parsing, tree depth after
	MaxNodes   = 4096     // tree nodes (an IN list is one node)
	MaxInItems = 10000    // strings in one IN list
)

// Error is a compile error: the expression is not valid SQL92 for
// RocketMQ, or exceeds a bound.
type Error struct {
	Pos int // byte offset in the expression
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

func errorAt(pos int, msg string) *Error { return &Error{Pos: pos, Msg: msg} }

func quoteRune(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	return strconv.QuoteRune(r)
}

// Expr is a compiled expression. It is immutable and safe for concurrent
// use.
type Expr struct {
	src     string
	root    *node
	ignored string
	nodes   int
	names   []string
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

// Properties returns the names of the properties the expression reads,
// each once, in order of first use (do not modify).
func (e *Expr) Properties() []string { return e.names }

// Ignored is the text after the compiled expression that Java's parser
// (and so this one) never reads, or "".
func (e *Expr) Ignored() string { return e.ignored }

// Compile parses src with Java's grammar and compile-time checks.
func Compile(src string) (e *Expr, err error) {
	if len(src) > MaxLength {
		return nil, errorAt(MaxLength, fmt.Sprintf("expression longer than %d bytes", MaxLength))
	}
	p := &parser{lx: lexer{src: src}}
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			e, err = nil, fe
		}
	}()
	root := p.asBoolean(p.or(), 0)
	e = &Expr{src: src, root: root, nodes: p.nodes, names: p.names}
	if t := p.peek(0); t.kind != tEOF {
		e.ignored = src[t.pos:]
	}
	return e, nil
}

// parser is a recursive-descent parser over the lazily lexed tokens with
// up to two tokens of lookahead, like Java's generated one. Errors unwind
// by panicking with *Error, recovered in Compile.
type parser struct {
	lx    lexer
	buf   [2]token
	nbuf  int
	depth int
	nodes int
	names []string
}

func (p *parser) fail(pos int, format string, args ...any) {
	panic(errorAt(pos, fmt.Sprintf(format, args...)))
}

func (p *parser) peek(i int) token {
	for p.nbuf <= i {
		t, err := p.lx.next()
		if err != nil {
			panic(err)
		}
		p.buf[p.nbuf] = t
		p.nbuf++
	}
	return p.buf[i]
}

func (p *parser) take() token {
	t := p.peek(0)
	p.buf[0], p.buf[1] = p.buf[1], token{}
	p.nbuf--
	return t
}

func (p *parser) expect(k tokKind) token {
	t := p.peek(0)
	if t.kind != k {
		p.fail(t.pos, "expected %v, found %v", k, t.kind)
	}
	return p.take()
}

// enter bounds the parser's recursion.
func (p *parser) enter(pos int) {
	if p.depth++; p.depth > MaxDepth {
		p.fail(pos, "expression nested deeper than %d levels", MaxDepth)
	}
}

// mk counts n and checks the tree bounds.
func (p *parser) mk(pos int, n *node) *node {
	d := 0
	for _, c := range [...]*node{n.x, n.y, n.z} {
		if c != nil {
			d = max(d, c.depth)
		}
	}
	for _, c := range n.list {
		d = max(d, c.depth)
	}
	n.depth = d + 1
	p.nodes++
	if n.depth > MaxDepth {
		p.fail(pos, "expression nested deeper than %d levels", MaxDepth)
	}
	if p.nodes > MaxNodes {
		p.fail(pos, "expression has more than %d terms", MaxNodes)
	}
	return n
}

func (p *parser) or() *node {
	left := p.and()
	for p.peek(0).kind == tOr {
		t := p.take()
		left = p.logic(opOr, t.pos, p.asBoolean(left, t.pos), p.asBoolean(p.and(), t.pos))
	}
	return left
}

func (p *parser) and() *node {
	left := p.equality()
	for p.peek(0).kind == tAnd {
		t := p.take()
		left = p.logic(opAnd, t.pos, p.asBoolean(left, t.pos), p.asBoolean(p.equality(), t.pos))
	}
	return left
}

// logic joins l and r into one n-ary AND/OR node (same result as Java's
// binary tree, flat so long chains stay shallow).
func (p *parser) logic(o op, pos int, l, r *node) *node {
	if l.op == o {
		l.list = append(l.list, r)
		if r.depth+1 > l.depth {
			l.depth = r.depth + 1
		}
		if l.depth > MaxDepth {
			p.fail(pos, "expression nested deeper than %d levels", MaxDepth)
		}
		return l
	}
	return p.mk(pos, &node{op: o, list: []*node{l, r}})
}

func (p *parser) equality() *node {
	left := p.comparison()
	for {
		t := p.peek(0)
		switch t.kind {
		case tEq, tNe:
			p.take()
			right := p.comparison()
			p.checkEqualOperand(left, t.pos)
			p.checkEqualOperand(right, t.pos)
			if left.isConst() && right.isConst() && left.isBoolean() && !right.isBoolean() {
				p.fail(t.pos, "%s cannot be compared with %s", left, right)
			}
			left = p.mk(t.pos, &node{op: opEq, x: left, y: right})
			if t.kind == tNe {
				left = p.mk(t.pos, &node{op: opNot, x: left})
			}
		case tIs:
			p.take()
			not := p.peek(0).kind == tNot
			if not {
				p.take()
			}
			p.expect(tNull)
			left = p.mk(t.pos, &node{op: opEq, x: left, y: p.mk(t.pos, &node{op: opConst})})
			if not {
				left = p.mk(t.pos, &node{op: opNot, x: left})
			}
		default:
			return left
		}
	}
}

func (p *parser) comparison() *node {
	left := p.unary()
	for {
		t := p.peek(0)
		not := false
		if t.kind == tNot {
			// Java: LOOKAHEAD(2) NOT followed by CONTAINS, STARTSWITH,
			// ENDSWITH, BETWEEN or IN; anything else is a syntax error.
			switch k := p.peek(1).kind; k {
			case tContains, tStartsWith, tEndsWith, tBetween, tIn:
				p.take()
				not = true
			default:
				p.fail(p.peek(1).pos, "expected CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after NOT, found %v", k)
			}
		}
		op := p.peek(0)
		switch op.kind {
		case tGt, tGe, tLt, tLe:
			p.take()
			left = p.compare(cmpOf(op.kind), op.pos, left, p.unary())
		case tContains, tStartsWith, tEndsWith:
			p.take()
			s := p.expect(tString).text
			left = p.mk(op.pos, &node{op: textOp(op.kind), x: left, s: s, not: not})
		case tBetween:
			p.take()
			low := p.unary()
			p.expect(tAnd)
			high := p.unary()
			left = p.between(op.pos, left, low, high, not)
		case tIn:
			p.take()
			left = p.in(op.pos, left, not)
		default:
			return left
		}
	}
}

// compare builds >, >=, <, <= after Java's checkLessThanOperand: neither
// side may be a boolean expression or a non-numeric literal.
func (p *parser) compare(c cmpOp, pos int, l, r *node) *node {
	p.checkLessThanOperand(l, pos)
	p.checkLessThanOperand(r, pos)
	return p.mk(pos, &node{op: opCmp, cmp: c, x: l, y: r})
}

func (p *parser) between(pos int, v, low, high *node, not bool) *node {
	if !not && low.isConst() && high.isConst() {
		// Java: constant bounds must be non-null and low <= high.
		if low.c.k == kNull || high.c.k == kNull {
			p.fail(pos, "illegal values of BETWEEN: values can not be NULL")
		}
		c, ok := javaCompare(high.c, low.c)
		if !ok {
			p.fail(pos, "illegal values of BETWEEN: %s and %s cannot be compared", low, high)
		}
		if c < 0 {
			p.fail(pos, "illegal values of BETWEEN: %s must be less than or equal to %s", low, high)
		}
	}
	for _, n := range [...]*node{v, low, v, high} {
		p.checkLessThanOperand(n, pos)
	}
	o := opBetween
	if not {
		o = opNotBetween
	}
	return p.mk(pos, &node{op: o, x: v, y: low, z: high})
}

func (p *parser) in(pos int, left *node, not bool) *node {
	if left.op != opProp {
		p.fail(pos, "expected a property on the left of IN, got %s", left)
	}
	p.expect(tLParen)
	items := []string{p.expect(tString).text}
	for p.peek(0).kind == tComma {
		t := p.take()
		if len(items) >= MaxInItems {
			p.fail(t.pos, "IN list longer than %d strings", MaxInItems)
		}
		items = append(items, p.expect(tString).text)
	}
	p.expect(tRParen)
	n := &node{op: opIn, x: left, not: not}
	if len(items) < 8 {
		n.items = items
	} else {
		n.set = make(map[string]struct{}, len(items))
		for _, s := range items {
			n.set[s] = struct{}{}
		}
	}
	return p.mk(pos, n)
}

func (p *parser) unary() *node {
	t := p.peek(0)
	switch t.kind {
	case tPlus, tMinus, tNot:
		p.take()
		p.enter(t.pos)
		x := p.unary()
		p.depth--
		switch t.kind {
		case tPlus:
			return x
		case tMinus:
			return p.mk(t.pos, &node{op: opNeg, x: x})
		}
		return p.mk(t.pos, &node{op: opNot, x: p.asBoolean(x, t.pos)})
	}
	return p.primary()
}

func (p *parser) primary() *node {
	t := p.take()
	switch t.kind {
	case tString:
		return p.mk(t.pos, &node{op: opConst, c: value{k: kString, s: t.text}})
	case tDecimal:
		return p.mk(t.pos, &node{op: opConst, c: p.decimal(t)})
	case tFloat:
		return p.mk(t.pos, &node{op: opConst, c: p.float(t)})
	case tTrue:
		return p.mk(t.pos, &node{op: opConst, c: vTrue})
	case tFalse:
		return p.mk(t.pos, &node{op: opConst, c: vFalse})
	case tNull:
		return p.mk(t.pos, &node{op: opConst})
	case tID:
		return p.mk(t.pos, &node{op: opProp, name: p.name(t.text)})
	case tLParen:
		p.enter(t.pos)
		x := p.or()
		p.depth--
		p.expect(tRParen)
		return x
	}
	p.fail(t.pos, "expected a literal, a property or '(', found %v", t.kind)
	return nil
}

// name interns a property name: every node reading it shares one string.
func (p *parser) name(s string) string {
	for _, n := range p.names {
		if n == s {
			return n
		}
	}
	p.names = append(p.names, s)
	return s
}

// decimal is ConstantExpression.createFromDecimal: a Long, narrowed to an
// Integer when it fits.
func (p *parser) decimal(t token) value {
	text := t.text
	if n := len(text); text[n-1] == 'l' || text[n-1] == 'L' {
		text = text[:n-1]
	}
	n, ok := parseJavaInt(text, 64)
	if !ok {
		p.fail(t.pos, "integer %s out of the range of a long", t.text)
	}
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		return value{k: kInt, i: n}
	}
	return value{k: kLong, i: n}
}

// float is ConstantExpression.createFloat: a Double that must be finite
// and, as in Java, not below Double.MIN_VALUE (so 0.0 is rejected).
func (p *parser) float(t token) value {
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil && !isRangeErr(err) {
		p.fail(t.pos, "bad number %s", t.text)
	}
	if f > math.MaxFloat64 {
		p.fail(t.pos, "%s is greater than %v", t.text, math.MaxFloat64)
	}
	if f < math.SmallestNonzeroFloat64 {
		p.fail(t.pos, "%s is less than %v", t.text, math.SmallestNonzeroFloat64)
	}
	return dbl(f)
}

// asBoolean is the parser's asBooleanExpression: boolean expressions pass,
// a property is cast, anything else is an error.
func (p *parser) asBoolean(n *node, pos int) *node {
	if n.isBoolean() {
		return n
	}
	if n.op == opProp {
		return p.mk(pos, &node{op: opBoolCast, x: n})
	}
	p.fail(pos, "expression will not result in a boolean value: %s", n)
	return nil
}

func (p *parser) checkLessThanOperand(n *node, pos int) {
	if n.isConst() && !n.c.isNumber() || !n.isConst() && n.isBoolean() {
		p.fail(pos, "value %s cannot be compared with <, <=, > or >=", n)
	}
}

func (p *parser) checkEqualOperand(n *node, pos int) {
	if n.isConst() && n.c.k == kNull {
		p.fail(pos, "NULL cannot be compared with = or <>; use IS NULL")
	}
}
