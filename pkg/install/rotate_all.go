package install

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// RotateAllOptions are the inputs of RotateAll.
type RotateAllOptions struct {
	// Options are each rotation's; Input's values go to every agent, its
	// Name and Namespace are each agent's own.
	Options
	// Namespace, when set, is where the agents are looked for; else
	// anywhere in the cluster.
	Namespace string
	// OlderThan: rotate only the agents whose token is older; 0: every
	// agent's.
	OlderThan time.Duration
}

// What RotateAll did with each agent (AgentRotation.Result).
const (
	// Rotated: the token was rotated (DryRun: would be).
	Rotated = "rotated"
	// Kept: the token is newer than OlderThan.
	Kept = "kept"
	// Skipped: the agent is not installed in the cluster, which is where
	// a rotation rolls its token out.
	Skipped = "skipped"
	// Failed: its rotation (or the look at its token) failed.
	Failed = "failed"
)

// AgentRotation is what RotateAll did with one agent's install.
type AgentRotation struct {
	Agent string `json:"agent"`
	// Namespace is where it is installed; "" when not in this cluster.
	Namespace string `json:"namespace,omitempty"`
	// Result is Rotated, Kept, Skipped or Failed.
	Result string `json:"result"`
	// TokenID is the token its Secret held; 0 when not known.
	TokenID int64 `json:"tokenID,omitempty"`
	// TokenCreatedAt is when that token was made, when GitLab said.
	TokenCreatedAt *time.Time `json:"tokenCreatedAt,omitempty"`
	// NewTokenID is the token it runs with after the rotation.
	NewTokenID int64 `json:"newTokenID,omitempty"`
	// Reason says why: the token's age, not installed here, the error.
	Reason string `json:"reason"`
	// Err is the failure, for the caller to explain.
	Err error `json:"-"`
}

// RotateAllResult is what RotateAll did, agent by agent (by name), and
// the count of each result.
type RotateAllResult struct {
	OlderThan time.Duration    `json:"olderThan"`
	DryRun    DryRun           `json:"dryRun,omitempty"`
	Agents    []*AgentRotation `json:"agents"`
	Rotated   int              `json:"rotated"`
	Kept      int              `json:"kept"`
	Skipped   int              `json:"skipped"`
	Failed    int              `json:"failed"`
}

// RotateAll rotates the token of every agent of the project installed in
// the cluster whose token is older than o.OlderThan, one after the other,
// each as Rotate does (no downtime; a failure puts the old token back). An
// agent not installed in this cluster is skipped: its token cannot be
// rolled out from here. One agent's failure does not stop the others; the
// error is for what stops them all (the cluster or GitLab not answering,
// an interrupt).
func RotateAll(ctx context.Context, env Env, o RotateAllOptions) (*RotateAllResult, error) {
	res := &RotateAllResult{OlderThan: o.OlderThan, DryRun: o.DryRun, Agents: []*AgentRotation{}}
	if err := env.Cluster.Reachable(ctx); err != nil {
		return res, fmt.Errorf("%w; nothing was rotated", err)
	}
	agents, err := env.GitLab.ListAgents(ctx, o.Project)
	if err != nil {
		return res, err
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].Name < agents[j].Name })
	for _, a := range agents {
		rs, err := installsOf(ctx, env, o, a)
		if ctx.Err() != nil {
			return res, interrupted(res, ctx.Err())
		}
		if err != nil {
			return res, err
		}
		for _, r := range rs {
			if ctx.Err() != nil {
				return res, interrupted(res, ctx.Err())
			}
			if r.Result == "" {
				rotateOne(ctx, env, o, a, r)
			}
			res.Agents = append(res.Agents, r)
			switch r.Result {
			case Rotated:
				res.Rotated++
			case Kept:
				res.Kept++
			case Skipped:
				res.Skipped++
			case Failed:
				res.Failed++
			}
		}
	}
	if ctx.Err() != nil {
		return res, interrupted(res, ctx.Err())
	}
	return res, nil
}

// interrupted is the error of a run that Ctrl-C ended: the rotation it
// stopped says what it left (which token is active), and the count of the
// agents rotated before it.
func interrupted(res *RotateAllResult, err error) error {
	if n := len(res.Agents); n > 0 && res.Agents[n-1].Err != nil {
		last := res.Agents[n-1]
		err = fmt.Errorf("agent %q: %w", last.Agent, last.Err)
	}
	if res.Rotated > 0 {
		err = fmt.Errorf("%w (%d agents were rotated before)", err, res.Rotated)
	}
	return err
}

// installsOf finds where agent a is installed: one AgentRotation per
// namespace, to do; or one that says it is skipped.
func installsOf(ctx context.Context, env Env, o RotateAllOptions, a *gitlab.Agent) ([]*AgentRotation, error) {
	in := o.Input
	in.Name = a.Name
	ds, err := env.Cluster.FindDeployments(ctx, manifest.Selector(in))
	if err != nil {
		return nil, fmt.Errorf("finding agent %q in the cluster: %w", a.Name, err)
	}
	var out []*AgentRotation
	seen := map[string]bool{}
	for _, d := range ds {
		if (o.Namespace == "" || d.Namespace == o.Namespace) && !seen[d.Namespace] {
			seen[d.Namespace] = true
			out = append(out, &AgentRotation{Agent: a.Name, Namespace: d.Namespace})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	if len(out) == 0 {
		where := "this cluster"
		if o.Namespace != "" {
			where = "namespace " + o.Namespace + " of this cluster"
		}
		out = append(out, &AgentRotation{Agent: a.Name, Result: Skipped,
			Reason: "not installed in " + where + ": its token can be rotated only where the agent runs"})
	}
	return out, nil
}

// rotateOne rotates the token of agent a installed in r.Namespace when it
// is older than o.OlderThan.
func rotateOne(ctx context.Context, env Env, o RotateAllOptions, a *gitlab.Agent, r *AgentRotation) {
	one := o.Options
	one.Name, one.Input.Name, one.Input.Namespace = a.Name, a.Name, r.Namespace
	fail := func(err error) {
		r.Result, r.Err, r.Reason = Failed, err, err.Error()
	}
	s, err := env.Cluster.GetSecret(ctx, r.Namespace, manifest.SecretName(one.Input))
	if err != nil {
		fail(fmt.Errorf("reading the token Secret: %w", err))
		return
	}
	r.TokenID, _ = secretToken(s)
	switch {
	case s == nil:
		r.Reason = "it has no token Secret"
	case r.TokenID == 0:
		r.Reason = "its token Secret names no token"
	default:
		t, err := env.GitLab.GetToken(ctx, o.Project, a, r.TokenID)
		switch {
		case gitlab.IsClass(err, gitlab.ClassNotFound):
			r.Reason = fmt.Sprintf("token %d is no longer active", r.TokenID)
		case err != nil:
			fail(err)
			return
		case t.CreatedAt == nil:
			r.Reason = fmt.Sprintf("token %d, of an age GitLab does not say", r.TokenID)
		default:
			r.TokenCreatedAt = t.CreatedAt
			age := time.Since(*t.CreatedAt)
			r.Reason = fmt.Sprintf("token %d is %s old", r.TokenID, duration.HumanDuration(age))
			if o.OlderThan > 0 && age <= o.OlderThan {
				r.Result, r.Reason = Kept, r.Reason+", newer than "+Days(o.OlderThan)
				return
			}
			if o.OlderThan > 0 {
				r.Reason += ", older than " + Days(o.OlderThan)
			}
		}
	}
	if env.Report != nil {
		doing := "rotating"
		if o.DryRun != DryRunNone {
			doing = "planning the rotation of"
		}
		env.Report.Step(fmt.Sprintf("%s agent %q in namespace %s: %s", doing, a.Name, r.Namespace, r.Reason))
	}
	res, err := Rotate(ctx, env, one)
	if err != nil {
		fail(err)
		return
	}
	r.Result, r.NewTokenID = Rotated, res.NewTokenID
}

// Days is d as --older-than takes it: whole days as "90d", else Go's form.
func Days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
