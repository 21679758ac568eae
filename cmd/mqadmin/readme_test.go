package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// flagTable is README's table of mqadmin's commands and their flags, as
// the command tree defines them.
func flagTable() string {
	var sb strings.Builder
	sb.WriteString("| command | flags |\n| --- | --- |\n")
	for _, c := range newRoot(io.Discard, io.Discard).Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		var flags []string
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			s := "`-" + f.Shorthand + "`/`--" + f.Name + "` " + f.Usage
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && !strings.Contains(f.Usage, "default") {
				s += " (default " + f.DefValue + ")"
			}
			flags = append(flags, s)
		})
		sb.WriteString("| `" + c.Name() + "` | " + strings.Join(flags, "; ") + " |\n")
	}
	return sb.String()
}

// README documents every command and flag exactly as they are.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "`-n`/`--namesrvAddr`") {
		t.Error("README.md does not document -n/--namesrvAddr")
	}
	if want := flagTable(); !strings.Contains(string(readme), want) {
		t.Fatalf("README.md's mqadmin table is not the command tree's; the table should read:\n%s", want)
	}
}
