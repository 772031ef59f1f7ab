package cmd

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestGeneratedFilesUpToDate fails when docs/ or completions/ no longer match
// the command tree: run `make generate` and commit the result.
func TestGeneratedFilesUpToDate(t *testing.T) {
	tmp := t.TempDir()
	root := NewRootCmd(DefaultFactory(), genericiooptions.NewTestIOStreamsDiscard())
	if err := Generate(root, tmp); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join("..", "..")
	for _, dir := range []string{"docs", "completions"} {
		want := listFiles(t, filepath.Join(tmp, dir))
		have := listFiles(t, filepath.Join(repo, dir))
		for name, content := range want {
			got, ok := have[name]
			switch {
			case !ok:
				t.Errorf("%s/%s is missing: run make generate", dir, name)
			case !bytes.Equal(got, content):
				t.Errorf("%s/%s is stale: run make generate", dir, name)
			}
		}
		for name := range have {
			if _, ok := want[name]; !ok && generatedName(dir, name) {
				t.Errorf("%s/%s is no longer generated: remove it (make generate does not)", dir, name)
			}
		}
	}
}

// generatedName tells the files make generate writes from those written by
// hand (docs/security.md, docs/README.md, ...).
func generatedName(dir, name string) bool {
	return dir == "completions" || strings.HasPrefix(name, "kubectl_gitlab-agent") || strings.HasPrefix(name, "man"+string(filepath.Separator))
}

func listFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		b, err := os.ReadFile(path)
		files[rel] = b
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}
