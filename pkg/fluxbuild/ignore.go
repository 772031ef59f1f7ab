package fluxbuild

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluxcd/pkg/sourceignore"
)

// ApplySourceIgnore removes from the repository extracted at dir the files
// that source-controller leaves out of a GitRepository's artifact, so that a
// build here sees the files kustomize-controller sees: the patterns of every
// .sourceignore file and of the GitRepository's spec.ignore (nil when
// unset); with neither, Flux's defaults (VCS files, images, archives, CI
// configuration such as .gitlab-ci.yml). It follows source-controller
// v1.9.6's reconcileArtifact (gitrepository_controller.go) and
// fluxcd/pkg artifact/storage's SourceIgnoreFilter and Archive: each path is
// matched on its own (a directory that matches is not pruned, so a negated
// pattern can keep a file in it), and only files are removed.
func ApplySourceIgnore(dir string, specIgnore *string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	domain := strings.Split(abs, string(filepath.Separator))
	ps, err := sourceignore.LoadIgnorePatterns(abs, domain)
	if err != nil {
		return fmt.Errorf("reading the repository's .sourceignore files: %w", err)
	}
	if specIgnore != nil {
		ps = append(ps, sourceignore.ReadPatterns(strings.NewReader(*specIgnore), domain)...)
	}
	// SourceIgnoreFilter: the defaults only when no pattern is given.
	matcher := sourceignore.NewDefaultMatcher(ps, domain)
	if len(ps) > 0 {
		matcher = sourceignore.NewMatcher(append(sourceignore.VCSPatterns(domain), ps...))
	}
	var drop []string
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == abs || d.IsDir() {
			return nil
		}
		if matcher.Match(strings.Split(p, string(filepath.Separator)), false) {
			drop = append(drop, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("applying the source ignore rules: %w", err)
	}
	for _, p := range drop {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("applying the source ignore rules: %w", err)
		}
	}
	return nil
}
