package diff

import (
	"fmt"
	"strings"
	"testing"
)

func render(hs []Hunk) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "@@ -%d,%d +%d,%d @@\n", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
		for _, l := range h.Lines {
			b.WriteString(string(l.Op) + l.Text + "\n")
		}
	}
	return b.String()
}

func TestHunks(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	tests := []struct {
		name, a, b string
		n          int
		want       string
	}{
		{"same", old, old, 3, ""},
		{"one change", old, strings.Replace(old, "e\n", "E\n", 1), 1, "@@ -4,3 +4,3 @@\n d\n-e\n+E\n f\n"},
		{"two far apart", old, strings.Replace(strings.Replace(old, "b\n", "B\n", 1), "i\n", "I\n", 1), 1,
			"@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -8,3 +8,3 @@\n h\n-i\n+I\n j\n"},
		{"two close merge", old, strings.Replace(strings.Replace(old, "b\n", "B\n", 1), "d\n", "D\n", 1), 1,
			"@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n-d\n+D\n e\n"},
		{"created", "", "x\ny\n", 3, "@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"deleted", "x\ny\n", "", 3, "@@ -1,2 +0,0 @@\n-x\n-y\n"},
		{"insert at end", "a\nb\n", "a\nb\nc\n", 3, "@@ -1,2 +1,3 @@\n a\n b\n+c\n"},
	}
	for _, tt := range tests {
		if got := render(Hunks(tt.a, tt.b, tt.n)); got != tt.want {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}
