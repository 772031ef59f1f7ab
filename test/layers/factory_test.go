package layers

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// clientMakers are the calls that build a GitLab or cluster client; outside
// the packages that implement those clients (pkg/gitlab, pkg/kube), only
// the Factory (pkg/cmd/factory.go) makes them (docs/architecture.md, "A
// command"), so that a test can hand every command fakes.
var clientMakers = regexp.MustCompile(`\b(gitlab\.New|kube\.NewClient|kubernetes\.NewForConfig|dynamic\.NewForConfig|rest\.RESTClientFor)\(`)

func TestClientsOnlyFromTheFactory(t *testing.T) {
	err := filepath.WalkDir("../../pkg", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		switch filepath.ToSlash(filepath.Dir(path)) {
		case "../../pkg/gitlab", "../../pkg/kube":
			return nil
		}
		if filepath.ToSlash(path) == "../../pkg/cmd/factory.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := clientMakers.FindString(line); m != "" && !strings.HasPrefix(strings.TrimSpace(line), "//") {
				t.Errorf("%s:%d builds a client (%s): ask the Factory for it", path, i+1, strings.TrimSuffix(m, "("))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
