package install

import (
	"strings"
	"testing"
)

func TestSkewWarning(t *testing.T) {
	for _, tt := range []struct{ agentk, kas, want string }{
		// GitLab supports KAS's minor version and the one either side.
		{"v17.3.1", "17.3.1", ""},
		{"v17.2.0", "17.3.1", ""},
		{"v17.1.5", "17.3.1", "behind"},
		{"v17.4.0", "17.3.1", ""},
		{"v17.3.2", "17.3.1", ""},
		{"v17.5.0", "17.3.1", "ahead"},
		// Across a major version: 16.11 came just before 17.0, 14.10
		// before 15.0.
		{"v16.11.0", "17.0.0", ""},
		{"v16.10.0", "17.0.0", "behind"},
		{"v17.0.0", "16.11.3", ""},
		{"v17.1.0", "16.11.3", "ahead"},
		{"v14.10.0", "15.0.0", ""},
		{"v14.9.0", "15.0.0", "behind"},
		{"v15.1.0", "14.10.0", "ahead"},
		{"v18.0.0-rc1", "18.0.0", ""},
		{"latest", "17.3.1", ""},
	} {
		got := SkewWarning(tt.agentk, tt.kas)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("SkewWarning(%s, %s) = %q, want %q", tt.agentk, tt.kas, got, tt.want)
		}
	}
}

func TestJudge(t *testing.T) {
	s := &AgentStatus{}
	s.judge(nil)
	if s.Verdict != NotInstalled {
		t.Errorf("no cluster state, no use: %s", s.Verdict)
	}
	s = &AgentStatus{Cluster: &ClusterState{Available: 2}}
	s.judge(nil)
	if s.Verdict != NotConnected {
		t.Errorf("installed, never used: %s", s.Verdict)
	}
}
