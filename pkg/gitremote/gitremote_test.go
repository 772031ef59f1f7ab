package gitremote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct{ in, host, path string }{
		{"git@gitlab.com:infra/agents.git", "gitlab.com", "infra/agents"},
		{"https://gitlab.com/infra/agents.git", "gitlab.com", "infra/agents"},
		{"https://oauth2:secret@gitlab.example.com/a/b/c", "gitlab.example.com", "a/b/c"},
		{"ssh://git@gitlab.example.com:2222/a/b.git", "gitlab.example.com", "a/b"},
		{"gitlab.com:a/b", "gitlab.com", "a/b"},
	}
	for _, tt := range tests {
		host, path, ok := ParseURL(tt.in)
		if !ok || host != tt.host || path != tt.path {
			t.Errorf("ParseURL(%q) = %q %q %v", tt.in, host, path, ok)
		}
	}
	for _, bad := range []string{"", "/local/path", "https://", "file:///x"} {
		if _, _, ok := ParseURL(bad); ok {
			t.Errorf("ParseURL(%q) succeeded", bad)
		}
	}
}

func TestProject(t *testing.T) {
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
	path, remote, ok := Project(sub, "https://gitlab.example.com")
	if !ok || path != "infra/agents" || remote != "origin" {
		t.Fatalf("got %q %q %v", path, remote, ok)
	}
	if _, _, ok := Project(sub, "https://gitlab.com"); ok {
		t.Error("matched a remote on another host")
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"git@gitlab.com:a/b.git", "https://u:p@h/a/b", "ssh://h:22/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, path, ok := ParseURL(s)
		if ok && (host == "" || path == "") {
			t.Fatalf("ParseURL(%q) = %q %q", s, host, path)
		}
	})
}

func TestRemotesAndWebURL(t *testing.T) {
	dir := t.TempDir()
	cfg := `[remote "b"]
	url = ssh://git@git.example.com:2222/infra/agents.git
[remote "a"]
	url = https://git.example.com:8443/infra/agents.git
[remote "origin"]
	url = git@git.example.com:infra/agents.git
[remote "local"]
	url = /srv/git/agents.git
[remote "toplevel"]
	url = https://git.example.com/agents.git
`
	if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range Remotes(dir) {
		got = append(got, r.Name+" "+r.Scheme+" "+r.WebURL()+" "+r.Path)
	}
	want := []string{
		"origin ssh https://git.example.com infra/agents",
		"a https https://git.example.com:8443 infra/agents",
		"b ssh https://git.example.com infra/agents", // the ssh port is not the web one
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Remotes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
