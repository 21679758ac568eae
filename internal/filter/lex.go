package filter

import "strings"

// tokKind is a token of Java's SelectorParser grammar.
type tokKind uint8

const (
	tEOF tokKind = iota
	tNot
	tAnd
	tOr
	tBetween
	tIn
	tTrue
	tFalse
	tNull
	tIs
	tContains
	tStartsWith
	tEndsWith
	tDecimal
	tFloat
	tString
	tID
	tEq
	tNe
	tGt
	tGe
	tLt
	tLe
	tLParen
	tComma
	tRParen
	tPlus
	tMinus
)

var tokNames = [...]string{
	tEOF: "end of expression", tNot: "NOT", tAnd: "AND", tOr: "OR", tBetween: "BETWEEN", tIn: "IN",
	tTrue: "TRUE", tFalse: "FALSE", tNull: "NULL", tIs: "IS", tContains: "CONTAINS",
	tStartsWith: "STARTSWITH", tEndsWith: "ENDSWITH", tDecimal: "integer", tFloat: "number",
	tString: "string", tID: "identifier", tEq: "'='", tNe: "'<>'", tGt: "'>'", tGe: "'>='",
	tLt: "'<'", tLe: "'<='", tLParen: "'('", tComma: "','", tRParen: "')'", tPlus: "'+'", tMinus: "'-'",
}

func (k tokKind) String() string { return tokNames[k] }

var keywords = map[string]tokKind{
	"NOT": tNot, "AND": tAnd, "OR": tOr, "BETWEEN": tBetween, "IN": tIn, "TRUE": tTrue,
	"FALSE": tFalse, "NULL": tNull, "IS": tIs, "CONTAINS": tContains, "STARTSWITH": tStartsWith,
	"ENDSWITH": tEndsWith,
}

// token is one lexeme. text is the image, except for strings, whose text
// is the decoded value (” → ').
type token struct {
	kind tokKind
	pos  int
	text string
}

// lexer splits the source on demand (Java's token manager is also lazy:
// text after the last token the parser looks at is never scanned).
type lexer struct {
	src string
	pos int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIDStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}
func isIDPart(c byte) bool { return isIDStart(c) || isDigit(c) }

// next returns the next token, skipping blanks and comments.
func (l *lexer) next() (token, error) {
	if err := l.skip(); err != nil {
		return token{}, err
	}
	s, start := l.src, l.pos
	if start >= len(s) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := s[start]
	switch {
	case isIDStart(c):
		end := start + 1
		for end < len(s) && isIDPart(s[end]) {
			end++
		}
		l.pos = end
		word := s[start:end]
		if len(word) <= len("STARTSWITH") {
			if k, ok := keywords[strings.ToUpper(word)]; ok {
				return token{kind: k, pos: start, text: word}, nil
			}
		}
		return token{kind: tID, pos: start, text: word}, nil
	case isDigit(c) || c == '.' && start+1 < len(s) && isDigit(s[start+1]):
		return l.number(), nil
	case c == '\'':
		return l.str()
	}
	return l.operator()
}

// skip passes blanks and comments. A line comment counts only when a
// newline ends it (the grammar's LINE_COMMENT); otherwise "--" lexes as
// two minus signs, as in Java.
func (l *lexer) skip() error {
	s := l.src
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case isSpace(c):
			l.pos++
		case strings.HasPrefix(s[l.pos:], "--"):
			nl := strings.IndexAny(s[l.pos:], "\r\n")
			if nl < 0 {
				return nil
			}
			l.pos += nl + 1
		case strings.HasPrefix(s[l.pos:], "/*"):
			end := strings.Index(s[l.pos+2:], "*/")
			if end < 0 {
				return errorAt(l.pos, "unterminated comment")
			}
			l.pos += 2 + end + 2
		default:
			return nil
		}
	}
	return nil
}

// number lexes the longest DECIMAL_LITERAL or FLOATING_POINT_LITERAL.
func (l *lexer) number() token {
	s, start := l.src, l.pos
	end := start
	for end < len(s) && isDigit(s[end]) {
		end++
	}
	digits := end - start
	isFloat := false
	if end < len(s) && s[end] == '.' {
		isFloat = true
		end++
		for end < len(s) && isDigit(s[end]) {
			end++
		}
	}
	if e := exponentEnd(s, end); e > end {
		isFloat, end = true, e
	}
	if isFloat {
		l.pos = end
		return token{kind: tFloat, pos: start, text: s[start:end]}
	}
	end = start + digits
	if s[start] == '0' {
		end = start + 1 // DECIMAL_LITERAL "0" takes no more digits and no L
	} else if end < len(s) && (s[end] == 'l' || s[end] == 'L') {
		end++
	}
	l.pos = end
	return token{kind: tDecimal, pos: start, text: s[start:end]}
}

// exponentEnd returns the end of an exponent (E[+-]digits) at i, or i.
func exponentEnd(s string, i int) int {
	if i >= len(s) || s[i] != 'e' && s[i] != 'E' {
		return i
	}
	j := i + 1
	if j < len(s) && (s[j] == '+' || s[j] == '-') {
		j++
	}
	k := j
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	if k == j {
		return i
	}
	return k
}

// str lexes a quoted string; ” inside stands for one quote.
func (l *lexer) str() (token, error) {
	s, start := l.src, l.pos
	var b strings.Builder
	i := start + 1
	for {
		j := strings.IndexByte(s[i:], '\'')
		if j < 0 {
			return token{}, errorAt(start, "unterminated string literal")
		}
		if i+j+1 < len(s) && s[i+j+1] == '\'' {
			b.WriteString(s[i : i+j+1])
			i += j + 2
			continue
		}
		if b.Len() == 0 {
			l.pos = i + j + 1
			return token{kind: tString, pos: start, text: s[i : i+j]}, nil
		}
		b.WriteString(s[i : i+j])
		l.pos = i + j + 1
		return token{kind: tString, pos: start, text: b.String()}, nil
	}
}

func (l *lexer) operator() (token, error) {
	s, start := l.src, l.pos
	two := ""
	if start+2 <= len(s) {
		two = s[start : start+2]
	}
	k, n := tEOF, 1
	switch {
	case two == "<>":
		k, n = tNe, 2
	case two == ">=":
		k, n = tGe, 2
	case two == "<=":
		k, n = tLe, 2
	default:
		switch s[start] {
		case '=':
			k = tEq
		case '>':
			k = tGt
		case '<':
			k = tLt
		case '(':
			k = tLParen
		case ')':
			k = tRParen
		case ',':
			k = tComma
		case '+':
			k = tPlus
		case '-':
			k = tMinus
		default:
			return token{}, errorAt(start, "unexpected character "+quoteRune(s[start:]))
		}
	}
	l.pos = start + n
	return token{kind: k, pos: start, text: s[start : start+n]}, nil
}
