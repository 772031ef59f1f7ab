package fakekas

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func TestRefusalBodies(t *testing.T) {
	g := fakegitlab.New()
	defer g.Close()
	p := g.AddProject("infra/agents")
	u, _ := g.AddMember(p, "maria", fakegitlab.Maintainer)
	a := g.AddAgent(p, "tun", u)
	other := g.AddProject("apps/other")
	job := g.AddJobToken(u, other)
	k, err := New(g, &rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	for _, tt := range []struct {
		auth   string
		status int
		body   string
		gu     string
	}{
		{"", 401, "exactly one credential", ""},
		{"Bearer nonsense", 401, "invalid authorization header", ""},
		{"Bearer pat:999:glpat-x", 401, `"message":"GitLab Agent Server: Unauthorized"`, "true"},
		{"Bearer pat:" + strconv.FormatInt(a.ID, 10) + ":glpat-x", 401, "Unauthorized", "true"},
		{"Bearer ci:" + strconv.FormatInt(a.ID, 10) + ":" + job, 403, "GitLab Agent Server: Forbidden: agentId is not allowed", ""},
	} {
		req, _ := http.NewRequest("GET", k.ProxyURL()+"/api", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := k.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.body) || resp.Header.Get("Gitlab-Unauthorized") != tt.gu {
			t.Errorf("%q: %d %s %q", tt.auth, resp.StatusCode, b, resp.Header.Get("Gitlab-Unauthorized"))
		}
	}
}
