package doctor

import (
	"context"
	"sync"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
)

// Diagnose runs the checks, in parallel, on each agent of statuses that was
// found in the cluster (every one when the caller named them), and puts the
// verdict and the checks that did not pass in its Doctor: an agent that
// runs elsewhere is not this cluster's to diagnose.
func Diagnose(ctx context.Context, env Env, statuses []*install.AgentStatus, named bool) {
	var wg sync.WaitGroup
	for _, s := range statuses {
		if s.Cluster == nil && !named {
			continue
		}
		wg.Go(func() { s.Doctor = Run(ctx, env, s.Agent.Name).Diagnosis() })
	}
	wg.Wait()
}

// Diagnosis is the report as status shows it: the verdict and the ids of
// the checks that failed or warned.
func (r *Report) Diagnosis() *install.Diagnosis {
	d := &install.Diagnosis{Verdict: r.Verdict}
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			d.Failed = append(d.Failed, c.ID)
		case Warn:
			d.Warned = append(d.Warned, c.ID)
		}
	}
	return d
}
