package doctor

import (
	"context"
	"slices"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
)

func TestDiagnose(t *testing.T) {
	w := newWorld(t, setup{})
	statuses := func() []*install.AgentStatus {
		return []*install.AgentStatus{
			{Agent: &gitlab.Agent{Name: "prod"}, Cluster: &install.ClusterState{Namespace: "gitlab-agent-prod", Deployment: "prod-gitlab-agent-v2"}},
			{Agent: &gitlab.Agent{Name: "elsewhere"}},
		}
	}

	// Found in the cluster: diagnosed; running elsewhere: left alone.
	st := statuses()
	Diagnose(context.Background(), w.env, st, false)
	if d := st[0].Doctor; d == nil || d.Verdict != Healthy || len(d.Failed)+len(d.Warned) != 0 {
		t.Errorf("prod: %+v", d)
	}
	if st[1].Doctor != nil {
		t.Errorf("an agent not in this cluster was diagnosed: %+v", st[1].Doctor)
	}

	// Named: each is diagnosed, found or not.
	st = statuses()
	Diagnose(context.Background(), w.env, st, true)
	if d := st[0].Doctor; d == nil || d.Verdict != Healthy {
		t.Errorf("prod, named: %+v", d)
	}
	d := st[1].Doctor
	if d == nil || d.Verdict != Broken || !slices.Contains(d.Failed, "agent-registered") || !slices.Contains(d.Failed, "agent-pods") {
		t.Errorf("elsewhere, named: %+v", d)
	}

	Diagnose(context.Background(), w.env, nil, true) // nothing to do, and done
}

func TestReportDiagnosis(t *testing.T) {
	tests := []struct {
		name           string
		report         Report
		failed, warned []string
	}{
		{"all pass", Report{Verdict: Healthy, Checks: []Check{{ID: "a", Status: Pass}, {ID: "b", Status: Skip}}}, nil, nil},
		{"in the checks' order", Report{Verdict: Broken, Checks: []Check{
			{ID: "a", Status: Warn}, {ID: "b", Status: Fail}, {ID: "c", Status: Pass}, {ID: "d", Status: Fail}, {ID: "e", Status: Warn}, {ID: "f", Status: Skip},
		}}, []string{"b", "d"}, []string{"a", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.report.Diagnosis()
			if d.Verdict != tt.report.Verdict || !slices.Equal(d.Failed, tt.failed) || !slices.Equal(d.Warned, tt.warned) {
				t.Errorf("%+v, want failed %q warned %q", d, tt.failed, tt.warned)
			}
		})
	}
}
