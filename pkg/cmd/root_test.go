package cmd

import "testing"

func TestGitLabFlagDefaults(t *testing.T) {
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
		g := &GlobalOptions{GitLabURL: tt.flagURL}
		if got := g.ResolvedGitLabURL(); got != tt.want {
			t.Errorf("flag %q env %q ci %q: got %q, want %q", tt.flagURL, tt.envURL, tt.ciURL, got, tt.want)
		}
	}
	t.Setenv("CI_PROJECT_ID", "42")
	if got := (&GlobalOptions{}).ResolvedProject(); got != "42" {
		t.Errorf("project from CI_PROJECT_ID = %q", got)
	}
	if got := (&GlobalOptions{Project: "infra/agents"}).ResolvedProject(); got != "infra/agents" {
		t.Errorf("project flag = %q", got)
	}
}
