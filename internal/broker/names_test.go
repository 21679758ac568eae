package broker

import (
	"regexp"
	"testing"
)

// validChars must accept exactly what Java's pattern accepts.
func TestValidCharsMatchesJavaPattern(t *testing.T) {
	re := regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)
	check := func(s string) {
		if got, want := validChars(s), re.MatchString(s); got != want {
			t.Fatalf("validChars(%q) = %v, pattern says %v", s, got, want)
		}
	}
	check("")
	for c := 0; c < 256; c++ {
		check(string([]byte{byte(c)}))
		check("ab" + string([]byte{byte(c)}) + "cd")
	}
	for _, s := range []string{"TopicTest", "%RETRY%g|x", "a b", "é", "a\x00", "A-Z_09"} {
		check(s)
	}
}

func BenchmarkValidGroup(b *testing.B) {
	for b.Loop() {
		if ValidGroup("please_rename_unique_group_name_4") != nil {
			b.Fatal("refused")
		}
	}
}
