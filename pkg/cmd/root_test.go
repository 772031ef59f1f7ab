package cmd

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestGitLabFlagDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no git remote to take a GitLab from
	tests := []struct {
		flagURL, envURL, ciURL, want string
	}{
		{"", "", "", "https://gitlab.com"},
		{"", "", "https://ci.example.com", "https://ci.example.com"},
		{"", "https://env.example.com/", "https://ci.example.com", "https://env.example.com"},
		{"https://flag.example.com", "https://env.example.com", "", "https://flag.example.com"},
	}
	for _, tt := range tests {
		t.Setenv("GITLAB_URL", tt.envURL)
		t.Setenv("CI_SERVER_URL", tt.ciURL)
		g := &GitLabFlags{URL: tt.flagURL}
		if got := g.ResolvedURL(); got != tt.want {
			t.Errorf("flag %q env %q ci %q: got %q, want %q", tt.flagURL, tt.envURL, tt.ciURL, got, tt.want)
		}
	}
	t.Setenv("CI_PROJECT_ID", "42")
	if got := (&GitLabFlags{}).ResolvedProject(); got != "42" {
		t.Errorf("project from CI_PROJECT_ID = %q", got)
	}
	if got := (&GitLabFlags{Project: "infra/agents"}).ResolvedProject(); got != "infra/agents" {
		t.Errorf("project flag = %q", got)
	}
}

func TestReadOnlyCommandsAreMarked(t *testing.T) {
	root := NewRootCmd(DefaultFactory(), DefaultStreams())
	marked := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Annotations[readOnly] == "true" {
			marked++
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	// The list in NewRootCmd names ten commands; a renamed one would
	// silently lose its mark.
	if marked != 10 {
		t.Fatalf("%d commands marked read-only, want 10", marked)
	}
	for _, path := range [][]string{{"install"}, {"kubeconfig"}, {"get-token"}, {"token", "create"}} {
		if c, _, _ := root.Find(path); c.Annotations[readOnly] == "true" {
			t.Errorf("%v is marked read-only", path)
		}
	}
}

func TestCleartextWarnedOncePerHost(t *testing.T) {
	var b strings.Builder
	g := &GitLabFlags{}
	for i := 0; i < 3; i++ {
		g.WarnCleartext(&b, "http://gitlab.example.com/api", "the GitLab token")
		g.WarnCleartext(&b, "http://127.0.0.1:8080", "the GitLab token")
		g.WarnCleartext(&b, "https://gitlab.example.com", "the GitLab token")
	}
	g.WarnCleartext(&b, "http://kas.example.com/k8s-proxy", "the k8s_proxy token")
	want := "warning: the GitLab token goes to gitlab.example.com over plain http, readable by anyone on the network path; use https\n" +
		"warning: the k8s_proxy token goes to kas.example.com over plain http, readable by anyone on the network path; use https\n"
	if b.String() != want {
		t.Fatalf("%q", b.String())
	}
}
