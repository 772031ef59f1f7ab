package gitlab

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseProject(t *testing.T) {
	for in, want := range map[string]ProjectRef{
		"42":                   {ID: 42},
		"infra/agents":         {Path: "infra/agents"},
		"group/sub/proj":       {Path: "group/sub/proj"},
		"/group/proj/":         {Path: "group/proj"},
		"my.group/proj-1.git":  {Path: "my.group/proj-1"},
		"Group_A/Project.Name": {Path: "Group_A/Project.Name"},
	} {
		got, err := ParseProject(in)
		if err != nil || got != want {
			t.Errorf("ParseProject(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-3", "proj", "a//b", "a/../b", "a/b c", "https://gitlab.com/a/b", "-a/b"} {
		if _, err := ParseProject(bad); err == nil {
			t.Errorf("ParseProject(%q) succeeded", bad)
		}
	}
}

func TestParseAgentRef(t *testing.T) {
	for in, want := range map[string]AgentRef{
		"prod-eu": {Name: "prod-eu"},
		"42":      {Name: "42", ID: 42},
		"a1":      {Name: "a1"},
	} {
		if got, err := ParseAgentRef(in); err != nil || got != want {
			t.Errorf("ParseAgentRef(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"Prod_EU", "", "-x", "x-", "a_b"} {
		if _, err := ParseAgentRef(bad); err == nil {
			t.Errorf("ParseAgentRef(%q) succeeded", bad)
		}
	}
}

func TestParseRemoteURL(t *testing.T) {
	tests := []struct{ in, host, path string }{
		{"git@gitlab.com:infra/agents.git", "gitlab.com", "infra/agents"},
		{"https://gitlab.com/infra/agents.git", "gitlab.com", "infra/agents"},
		{"https://oauth2:secret@gitlab.example.com/a/b/c", "gitlab.example.com", "a/b/c"},
		{"ssh://git@gitlab.example.com:2222/a/b.git", "gitlab.example.com", "a/b"},
		{"gitlab.com:a/b", "gitlab.com", "a/b"},
	}
	for _, tt := range tests {
		host, path, ok := ParseRemoteURL(tt.in)
		if !ok || host != tt.host || path != tt.path {
			t.Errorf("ParseRemoteURL(%q) = %q %q %v", tt.in, host, path, ok)
		}
	}
	for _, bad := range []string{"", "/local/path", "https://", "file:///x"} {
		if _, _, ok := ParseRemoteURL(bad); ok {
			t.Errorf("ParseRemoteURL(%q) succeeded", bad)
		}
	}
}

func TestProjectFromGitRemote(t *testing.T) {
	dir := t.TempDir()
	cfg := `[core]
	bare = false
[remote "upstream"]
	url = git@github.com:someone/else.git
[remote "origin"]
	url = https://gitlab.example.com/infra/agents.git
	fetch = +refs/heads/*:refs/remotes/origin/*
`
	if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "deep", "er")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	ref, remote, ok := ProjectFromGitRemote(sub, "https://gitlab.example.com")
	if !ok || ref.Path != "infra/agents" || remote != "origin" {
		t.Fatalf("got %+v %q %v", ref, remote, ok)
	}
	if _, _, ok := ProjectFromGitRemote(sub, "https://gitlab.com"); ok {
		t.Error("matched a remote on another host")
	}
}

func FuzzParseProject(f *testing.F) {
	for _, s := range []string{"42", "a/b", "a/b/c.git", "", "../x", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseProject(s)
		if err != nil {
			return
		}
		if (ref.ID == 0) == (ref.Path == "") {
			t.Fatalf("ParseProject(%q) = %+v: want exactly one of ID and path", s, ref)
		}
		if again, err := ParseProject(ref.String()); err != nil || again != ref {
			t.Fatalf("round trip of %q: %+v %v", s, again, err)
		}
	})
}

func FuzzParseAgentRef(f *testing.F) {
	for _, s := range []string{"prod", "42", "Prod_EU", "a-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseAgentRef(s)
		if err != nil {
			return
		}
		if ref.Name != "" && ValidateAgentName(ref.Name) != nil {
			t.Fatalf("accepted invalid name %q", ref.Name)
		}
	})
}

func FuzzParseRemoteURL(f *testing.F) {
	for _, s := range []string{"git@gitlab.com:a/b.git", "https://u:p@h/a/b", "ssh://h:22/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, path, ok := ParseRemoteURL(s)
		if ok && (host == "" || path == "") {
			t.Fatalf("ParseRemoteURL(%q) = %q %q", s, host, path)
		}
	})
}
