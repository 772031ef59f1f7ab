package cmd

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// TestStatusGroup: status --group reads every agent under the group from
// GraphQL, judges each version against KAS's (17.3.1 in the fake) and
// counts them.
func TestStatusGroup(t *testing.T) {
	w := newInProcess(t)
	sub := w.gl.AddProject("infra/sub/edge")
	w.gl.SetRole(sub, w.user, fakegitlab.Developer)
	prod := w.gl.AddAgent(w.project, "prod", w.user)
	w.gl.AddAgentToken(prod, "a", w.user)
	w.gl.AddAgentToken(prod, "b", w.user)
	w.gl.SetAgentConnection(prod, "v17.3.0")
	old := w.gl.AddAgent(w.project, "old", w.user)
	tok := w.gl.AddAgentToken(old, "a", w.user)
	w.gl.MarkTokenUsed(tok.Token, time.Now().Add(-time.Hour))
	w.gl.SetAgentConnection(w.gl.AddAgent(sub, "edge", w.user), "v17.1.2")
	w.gl.SetAgentConnection(w.gl.AddAgent(sub, "next", w.user), "v17.5.0")

	code, out, errOut := w.run(t, "status", "--group", "infra", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Group string `json:"group"`
		KAS   struct {
			Version string `json:"version"`
		} `json:"kas"`
		Agents []struct {
			Project        string  `json:"project"`
			Name           string  `json:"name"`
			ID             int64   `json:"id"`
			Connected      bool    `json:"connected"`
			Version        *string `json:"version"`
			Skew           *string `json:"skew"`
			Tokens         int     `json:"tokens"`
			OldestTokenAge *string `json:"oldestTokenAge"`
			Receptive      bool    `json:"receptive"`
		} `json:"agents"`
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Group != "infra" || got.KAS.Version != "17.3.1" || len(got.Agents) != 4 {
		t.Fatalf("got %s", out)
	}
	rows := map[string]string{}
	for _, a := range got.Agents {
		v, s, age := "null", "null", "null"
		if a.Version != nil {
			v = *a.Version
		}
		if a.Skew != nil {
			s = *a.Skew
		}
		if a.OldestTokenAge != nil {
			age = "age"
		}
		if a.ID == 0 {
			t.Errorf("%s: no id", a.Name)
		}
		rows[a.Project+":"+a.Name] = strings.Join([]string{map[bool]string{true: "connected", false: "not"}[a.Connected], v, s, string(rune('0' + a.Tokens)), age}, " ")
	}
	want := map[string]string{
		"infra/agents:old":    "not null null 1 age", // used an hour ago: not connected
		"infra/agents:prod":   "connected v17.3.0 ok 2 age",
		"infra/sub/edge:edge": "connected v17.1.2 warn 0 null",
		"infra/sub/edge:next": "connected v17.5.0 fail 0 null",
	}
	for k, v := range want {
		if rows[k] != v {
			t.Errorf("%s: %q, want %q", k, rows[k], v)
		}
	}
	if s := got.Summary; s["agents"] != 4 || s["connected"] != 3 || s["outdated"] != 2 || s["twoTokens"] != 1 {
		t.Errorf("summary %v", s)
	}

	code, out, errOut = w.run(t, "status", "--group", "infra", "--no-subgroups")
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "edge") || !strings.Contains(out, "2 agents, 1 connected, 0 outdated, 1 with two tokens (KAS 17.3.1)") {
		t.Errorf("table without subgroups:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("stderr without a terminal: %q", errOut)
	}
	if code, _, errOut = w.run(t, "status", "--group", "nope"); code == 0 || !strings.Contains(errOut, "no such group") {
		t.Errorf("unknown group: exit %d, %s", code, errOut)
	}
}

// TestSkewOf: a version that does not parse is unknown (null, left out of
// --outdated and counted), never ok; the verdict comes from the distance,
// not from words of the warning, which quotes the versions.
func TestSkewOf(t *testing.T) {
	for _, c := range []struct{ agentk, kas, want string }{
		{"v17.3.0", "17.3.0", skewOK},
		{"v17.2.0", "17.3.0-ee", skewOK},
		{"v17.0.0", "17.3.0", skewWarn},
		{"v17.5.0", "17.3.0", skewFail},
		{"v17.0.0-ahead", "17.3.0", skewWarn},
		{"v17.0.0", "17.3.0-ahead", skewWarn},
		{"v17.3", "17.3.0", "<nil>"},
		{"v17.0.0", "17.3", "<nil>"},
		{"latest", "17.3.0", "<nil>"},
		{"", "17.3.0", "<nil>"},
		{"v17.0.0", "", "<nil>"},
	} {
		got := "<nil>"
		if s := skewOf(c.agentk, c.kas); s != nil {
			got = *s
		}
		if got != c.want {
			t.Errorf("skewOf(%q, %q) = %s, want %s", c.agentk, c.kas, got, c.want)
		}
	}
}
