package fluxbuild

import (
	"maps"
	"reflect"
	"slices"
	"testing"
)

// What is left of a repository after the ignore rules, as source-controller
// v1.9.6 makes a GitRepository's artifact.
func TestApplySourceIgnore(t *testing.T) {
	repo := map[string]string{
		"apps/a.yaml":             "a",
		"apps/logo.png":           "png",
		"apps/.gitlab-ci.yml":     "ci",
		".gitlab-ci.yml":          "ci",
		".gitignore":              "x",
		".github/workflows/x.yml": "gh",
		"apps/.sops.yaml":         "sops",
		"drafts/b.yaml":           "b",
		"drafts/keep.yaml":        "k",
	}
	with := func(extra map[string]string) map[string]string {
		m := maps.Clone(repo)
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	ignore := func(s string) *string { return &s }
	cases := []struct {
		name   string
		files  map[string]string
		ignore *string
		want   []string
	}{
		{"the defaults: VCS, images, CI, SOPS and goreleaser files", repo, nil,
			[]string{"apps/a.yaml", "drafts/b.yaml", "drafts/keep.yaml"}},
		{"a .sourceignore replaces the defaults but VCS files", with(map[string]string{".sourceignore": "# drafts\ndrafts/\n!drafts/keep.yaml\n"}), nil,
			[]string{".github/workflows/x.yml", ".gitlab-ci.yml", ".sourceignore", "apps/.gitlab-ci.yml", "apps/.sops.yaml", "apps/a.yaml", "apps/logo.png", "drafts/keep.yaml"}},
		{"a .sourceignore in a subdirectory is relative to it", with(map[string]string{"drafts/.sourceignore": "b.yaml\n"}), nil,
			[]string{".github/workflows/x.yml", ".gitlab-ci.yml", "apps/.gitlab-ci.yml", "apps/.sops.yaml", "apps/a.yaml", "apps/logo.png", "drafts/.sourceignore", "drafts/keep.yaml"}},
		{"spec.ignore", repo, ignore("/*\n!/apps/\n*.png\n"),
			[]string{"apps/.gitlab-ci.yml", "apps/.sops.yaml", "apps/a.yaml"}},
		{"an empty spec.ignore keeps the defaults", repo, ignore(""),
			[]string{"apps/a.yaml", "drafts/b.yaml", "drafts/keep.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.files)
			if err := ApplySourceIgnore(dir, tc.ignore); err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(maps.Keys(snapshot(t, dir)))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("left %q, want %q", got, tc.want)
			}
		})
	}
}
