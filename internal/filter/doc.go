// Package filter compiles and evaluates RocketMQ's SQL92 message filters
// (Java's org.apache.rocketmq.filter; Java: org.apache.rocketmq.filter, SelectorParser.jj and the
// expression classes). It imports nothing from this module: the broker
// hands it property values through a lookup function.
//
// Grammar (4.9 plus the 5.x CONTAINS / STARTSWITH / ENDSWITH), lowest
// precedence first:
//
//	or         = and { OR and }
//	and        = equality { AND equality }
//	equality   = comparison { ("=" | "<>") comparison | IS NULL | IS NOT NULL }
//	comparison = unary { (">" | ">=" | "<" | "<=") unary
//	                   | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string
//	                   | [NOT] BETWEEN unary AND unary
//	                   | [NOT] IN "(" string { "," string } ")" }
//	unary      = "+" unary | "-" unary | NOT unary | primary
//	primary    = literal | identifier | "(" or ")"
//
// Keywords are case-insensitive; identifiers ([A-Za-z_$][A-Za-z0-9_$]*)
// name message properties, case-sensitive. Literals: 'strings' (” is a
// quote), integers (0 or [1-9][0-9]*, optional L; Integer when they fit in
// 32 bits, else Long), floats (1.5, 1., .5, 1e5, 1.5E-3; Double, and like
// Java a float literal equal to 0 is rejected), TRUE, FALSE, NULL.
// Comments: "-- ...\n" (only when a newline ends it) and "/* ... */".
// Note that NOT in front of an operand binds tighter than a comparison, as
// in Java: "NOT a = 1" is "(NOT a) = 1".
//
// Like Java's parser, compilation stops at the first token that cannot
// continue a complete expression and ignores the rest of the text ("a = 1 b"
// compiles as "a = 1"); Expr.Ignored reports that rest so callers can log it.
//
// Evaluation follows Java's classes exactly, including their quirks:
//   - values are NULL, Boolean, Integer, Long, Double or String; a missing
//     property is NULL, a present one a String;
//   - comparisons convert the string side to the other side's type
//     (Integer.valueOf, Long.valueOf, Double.valueOf, Boolean.valueOf) and
//     widen Integer < Long < Double; a string that does not parse is an
//     evaluation error, which fails the whole expression (no match);
//   - "<", "<=", ">", ">=" between two strings compare them as doubles;
//   - "=" with a NULL left side is NULL, with only the right side NULL is
//     FALSE; "<>" is NOT "="; ordering comparisons with a NULL are NULL;
//   - AND, OR and NOT use three-valued logic with Java's short circuits;
//   - IN on a missing property is NULL; CONTAINS & co. on a missing
//     property, a non-string or an empty search string are FALSE (also in
//     their NOT forms);
//   - a message matches only when the result is TRUE.
//
// Hostile input is bounded: MaxLength bytes of text, MaxDepth levels of
// nesting (parser recursion and tree depth), MaxNodes tree nodes and
// MaxInItems strings per IN list. A compiled Expr is immutable and safe
// for concurrent use; evaluating it does not allocate.
package filter
