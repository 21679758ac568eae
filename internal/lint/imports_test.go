package lint

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/mqd/mqd/"

// allowed lists, per package, the module packages its non-test files may
// import. A package missing here may import nothing from the module.
var allowed = map[string][]string{
	"flush":                {},
	"internal/uring":       {},
	"internal/stat":        {},
	"internal/protocol":    {},
	"internal/message":     {},
	"internal/filter":      {},
	"internal/vfs":         {"internal/uring"},
	"internal/vfs/crashfs": {"internal/vfs"},
	"commitlog":            {"internal/vfs", "flush", "internal/message", "internal/stat"},
	"consumequeue":         {"internal/vfs"},
	"index":                {"internal/vfs", "internal/message"},
	"engine":               {"internal/stat", "commitlog", "consumequeue", "index", "flush", "internal/vfs", "internal/message"},
	"ha":                   {"flush", "internal/vfs"},
	"internal/remoting":    {"internal/protocol"},
	"controller":           {"internal/protocol", "internal/remoting"},
	"controller/agent":     {"internal/protocol", "internal/remoting"},
	"internal/acl":         {"internal/protocol"},
	"internal/namesrv":     {"internal/protocol", "internal/remoting", "internal/acl"},
	"internal/broker":      {"engine", "internal/protocol", "internal/remoting", "internal/message", "internal/acl", "internal/filter", "schedule", "timer", "internal/stat", "ha"},
	"schedule":             {"engine", "internal/message"},
	"timer":                {"engine", "internal/message"},
	"bench":                {"engine", "index", "internal/vfs", "internal/protocol", "internal/remoting", "internal/message"},
	"internal/compat":      {},
	"internal/hostile":     {},
	"internal/lint":        {},
	"internal/testport":    {},
	"cmd/mqd":              {"engine", "internal/broker", "internal/namesrv", "internal/metrics", "internal/failover", "controller", "controller/agent"},
	"bench/plot":           {},
	"cmd/mqbench":          {"bench", "bench/plot"},
	"internal/metrics":     {"internal/broker", "internal/stat"},
	"internal/failover":    {"engine", "ha", "internal/broker"},
	"internal/admin":       {"internal/protocol", "internal/remoting", "internal/message"},
	"cmd/mqadmin":          {"internal/admin", "internal/protocol"},
	// the root package embeds a nameserver and broker, wiring them as cmd/mqd does
	".": {"engine", "internal/broker", "internal/namesrv", "internal/protocol", "internal/remoting"},
}

func TestImportRules(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		seen[pkg] = true
		rules, known := allowed[pkg]
		if !known {
			t.Errorf("%s: package has no import rule; add it to internal/lint", pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.TrimPrefix(p, module)
			if !contains(rules, dep) {
				t.Errorf("%s imports %s, which its layer may not (see internal/lint)", rel+"/"+filepath.Base(path), dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowed {
		if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
			t.Errorf("rule for %s, which does not exist", pkg)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
