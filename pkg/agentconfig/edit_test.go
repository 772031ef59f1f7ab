package agentconfig

import (
	"strings"
	"testing"
)

// original has comments, unknown keys, a literal block and odd spacing that
// every edit must keep byte for byte outside the node it edits.
const original = `# Agent config for prod-eu. Owned by the platform team.
gitops:   # deprecated, still here
  manifest_projects:
  - id: infra/manifests
    paths:
    - glob: '/prod/**/*.yaml'

ci_access:
  # projects that deploy here
  projects:
  - id: apps/web      # the shop
    default_namespace: web
    access_as:
      ci_job: {}
  - id: apps/api
  groups:
    - id: platform

observability:
  logging:
    level: debug   # while we debug KAS
remote_development:
  enabled: true
  note: |
    keep this
      exactly
x-custom: [1, 2, 3]
`

func edit(t *testing.T, src string, f func(c *Config) (bool, error)) (string, bool) {
	t.Helper()
	c, err := Parse("config.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	changed, err := f(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(c.Bytes()), changed
}

func TestAddProjectKeepsEverythingElse(t *testing.T) {
	got, changed := edit(t, original, func(c *Config) (bool, error) { return c.AddAccess(CIAccess, Projects, "apps/worker") })
	want := strings.Replace(original, "  - id: apps/api\n", "  - id: apps/api\n  - id: apps/worker\n", 1)
	if !changed || got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// Adding it again changes nothing.
	again, changed := edit(t, got, func(c *Config) (bool, error) { return c.AddAccess(CIAccess, Projects, "apps/worker") })
	if changed || again != got {
		t.Fatal("a second add changed the file")
	}
}

func TestAddGroupToIndentedList(t *testing.T) {
	got, _ := edit(t, original, func(c *Config) (bool, error) { return c.AddAccess(CIAccess, Groups, "sre") })
	want := strings.Replace(original, "    - id: platform\n", "    - id: platform\n    - id: sre\n", 1)
	if got != want {
		t.Fatalf("got:\n%s", got)
	}
}

func TestAddNewSection(t *testing.T) {
	got, _ := edit(t, original, func(c *Config) (bool, error) { return c.AddAccess(UserAccess, Projects, "infra/agents") })
	want := original + "user_access:\n  projects:\n  - id: infra/agents\n"
	if got != want {
		t.Fatalf("got:\n%s", got)
	}
	got, _ = edit(t, got, func(c *Config) (bool, error) { return c.SetAccessAs(UserAccess, "agent") })
	want = original + "user_access:\n  access_as:\n    agent: {}\n  projects:\n  - id: infra/agents\n"
	if got != want {
		t.Fatalf("got:\n%s", got)
	}
	got, _ = edit(t, got, func(c *Config) (bool, error) { return c.SetAccessAs(UserAccess, "user") })
	want = original + "user_access:\n  access_as:\n    user: {}\n  projects:\n  - id: infra/agents\n"
	if got != want {
		t.Fatalf("got:\n%s", got)
	}
}

func TestRemove(t *testing.T) {
	got, changed := edit(t, original, func(c *Config) (bool, error) { return c.RemoveAccess(CIAccess, Projects, "apps/web") })
	want := strings.Replace(original, `  - id: apps/web      # the shop
    default_namespace: web
    access_as:
      ci_job: {}
`, "", 1)
	if !changed || got != want {
		t.Fatalf("got:\n%s", got)
	}
	// The last group goes with its key; the section stays for its projects.
	got, _ = edit(t, original, func(c *Config) (bool, error) { return c.RemoveAccess(CIAccess, Groups, "platform") })
	want = strings.Replace(original, "  groups:\n    - id: platform\n", "", 1)
	if got != want {
		t.Fatalf("got:\n%s", got)
	}
	// Removing what is not there changes nothing.
	if _, changed := edit(t, original, func(c *Config) (bool, error) { return c.RemoveAccess(UserAccess, Groups, "x") }); changed {
		t.Fatal("removing nothing changed the file")
	}
}

func TestRemoveLastEntryRemovesSection(t *testing.T) {
	src := "# head\nci_access:\n  projects:\n  - id: a\nother: 1\n"
	got, _ := edit(t, src, func(c *Config) (bool, error) { return c.RemoveAccess(CIAccess, Projects, "a") })
	if got != "# head\nother: 1\n" {
		t.Fatalf("got %q", got)
	}
}

func TestEmptyAndSpecialFiles(t *testing.T) {
	tests := []struct {
		name, src, want string
		op              func(c *Config) (bool, error)
	}{
		{"empty file", "", "ci_access:\n  projects:\n  - id: a/b\n", addCI("a/b")},
		{"comment only, no final newline", "# nothing yet", "# nothing yet\nci_access:\n  projects:\n  - id: a/b\n", addCI("a/b")},
		{"null section", "ci_access:\nx: 1\n", "ci_access:\n  projects:\n  - id: a/b\nx: 1\n", addCI("a/b")},
		{"explicit null", "ci_access: ~ # later\n", "ci_access: # later\n  projects:\n  - id: a/b\n", addCI("a/b")},
		{"flow section", "ci_access: {}\nx: 1\n", "ci_access:\n  projects:\n    - id: a/b\nx: 1\n", addCI("a/b")},
		{"flow list", "ci_access:\n  projects: [{id: c}]\n  groups: []\n", "ci_access:\n  projects:\n    - id: c\n    - id: a/b\n  groups: []\n", addCI("a/b")},
		{"no final newline", "x: 1", "x: 1\nci_access:\n  projects:\n  - id: a/b\n", addCI("a/b")},
		{"indented top level", "  x: 1\n", "  x: 1\n  ci_access:\n    projects:\n    - id: a/b\n", addCI("a/b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := edit(t, tt.src, tt.op); got != tt.want {
				t.Fatalf("got:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestRejectsBadIDs(t *testing.T) {
	c, _ := Parse("config.yaml", nil)
	for _, id := range []string{"", "a: b", "a/../b", "-x", "a b", "\xb0"} {
		if _, err := c.AddAccess(CIAccess, Projects, id); err == nil {
			t.Errorf("AddAccess(%q) succeeded", id)
		}
	}
}

func addCI(id string) func(c *Config) (bool, error) {
	return func(c *Config) (bool, error) { return c.AddAccess(CIAccess, Projects, id) }
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"a: b: c\n", "config.yaml:1:4: invalid YAML: mapping value is not allowed in this context"},
		{"x: 1\nci_access:\n  - id: a\n", "config.yaml:3:3: ci_access must be a map"},
		{"ci_access:\n  projects: a\n", "config.yaml:2:13: ci_access.projects must be a list"},
		{"ci_access:\n  projects:\n  - name: a\n", "config.yaml:3:5: ci_access.projects[0] must be a map with an id"},
		{"- a\n", "config.yaml:1:1: the top level must be a map"},
		{"x: 1\ny:\n  - a\n z: 2\n", "config.yaml:4:"},
		{strings.Repeat("#", MaxSize+1), "config.yaml: the file has 131073 bytes; GitLab reads at most 131072 (128 KiB)"},
	}
	for _, tt := range tests {
		_, err := Parse("config.yaml", []byte(tt.src))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%.30q) = %v, want %q", tt.src, err, tt.want)
		}
	}
}

func FuzzEdit(f *testing.F) {
	f.Add([]byte(original), "apps/x", uint8(0))
	f.Add([]byte("ci_access: {projects: [{id: a}]}\n"), "a", uint8(1))
	f.Add([]byte("user_access:\n  access_as: {user: {}}\n"), "g", uint8(2))
	f.Add([]byte(""), "a/b", uint8(3))
	f.Fuzz(func(t *testing.T, src []byte, id string, op uint8) {
		c, err := Parse("f.yaml", src)
		if err != nil {
			return
		}
		before := string(c.Bytes())
		sections := []string{CIAccess, UserAccess}
		kinds := []string{Projects, Groups}
		sec, kind := sections[op%2], kinds[(op/2)%2]
		var changed bool
		switch (op / 4) % 3 {
		case 0:
			changed, err = c.AddAccess(sec, kind, id)
			if err == nil && !c.hasAccess(sec, kind, id) {
				t.Fatalf("added %q but it is not there", id)
			}
		case 1:
			changed, err = c.RemoveAccess(sec, kind, id)
			if err == nil && c.hasAccess(sec, kind, id) {
				t.Fatalf("removed %q but it is still there", id)
			}
		case 2:
			changed, err = c.SetAccessAs(UserAccess, []string{"agent", "user"}[op%2])
		}
		if err != nil {
			if string(c.Bytes()) != before {
				t.Fatal("a failed edit changed the file")
			}
			return
		}
		if !changed && string(c.Bytes()) != before {
			t.Fatal("an edit that changed nothing changed the file")
		}
		if _, err := Parse("f.yaml", c.Bytes()); err != nil && len(c.Bytes()) <= MaxSize {
			t.Fatalf("the edited file does not parse: %v\n%s", err, c.Bytes())
		}
	})
}

func TestEntriesAndHas(t *testing.T) {
	c, err := Parse("c", []byte("ci_access:\n  projects:\n  - id: a/b\n  - id: c/d\n  groups:\n  - id: g\ngitops:\n  manifest_projects:\n  - id: x/y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Entries(CIAccess, Projects); len(got) != 2 || got[0] != "a/b" || got[1] != "c/d" {
		t.Errorf("projects %v", got)
	}
	if got := c.Entries(UserAccess, Groups); got != nil {
		t.Errorf("user groups %v", got)
	}
	if !c.Has("gitops", "manifest_projects") || c.Has("gitops", "other") || c.Has("flux") {
		t.Error("Has")
	}
}

// TestNewSectionAfterTheLastOnesComments: a commented-out entry under the
// last section stays with it, not inside the section added after it (where
// uncommenting it would grant the wrong access); a column-0 footer stays at
// the end.
func TestNewSectionAfterTheLastOnesComments(t *testing.T) {
	src := "ci_access:\n  projects:\n  - id: a\n  # - id: old\n\n    # indented, after a blank line\n# footer\n"
	got, changed := edit(t, src, func(c *Config) (bool, error) { return c.AddAccess(UserAccess, Projects, "infra/agents") })
	want := "ci_access:\n  projects:\n  - id: a\n  # - id: old\n\n    # indented, after a blank line\nuser_access:\n  projects:\n  - id: infra/agents\n# footer\n"
	if !changed || got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestIDsMatchWhateverTheirCase: GitLab resolves full paths whatever their
// case; an entry for Infra/Agents is infra/agents's.
func TestIDsMatchWhateverTheirCase(t *testing.T) {
	src := "ci_access:\n  projects:\n  - id: Infra/Agents\n    default_namespace: x\n"
	if got, changed := edit(t, src, addCI("infra/agents")); changed || got != src {
		t.Errorf("changed: %v\n%s", changed, got)
	}
}
