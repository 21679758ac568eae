// Package lint holds tests that keep the module's layering honest: which
// package may import which (the rules in shared/architecture.md, adjusted
// where the code taught better). It has no code of its own.
package lint
