package message

import "testing"

func TestJavaStringHash(t *testing.T) {
	// Values from Java's MessageExtBrokerInner.tagsString2tagsCode (computed by Java's String.hashCode).
	cases := map[string]int32{"": 0, "TagA": 2598919, "标签": 857175, "😀": 1772899, "a": 97}
	for s, want := range cases {
		if got := JavaStringHash(s); got != want {
			t.Errorf("JavaStringHash(%q) = %d, want %d", s, got, want)
		}
	}
	if TagsCode("") != 0 || TagsCode("TagA") != 2598919 {
		t.Fatal("TagsCode")
	}
}
