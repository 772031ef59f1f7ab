package install

import (
	"context"
	"fmt"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// installed is the agent as it runs in the cluster.
type installed struct {
	Running
	tokenID int64
	token   string
	// secretRV is the token Secret's resourceVersion as read.
	secretRV string
}

// current reads the installed agent: its Deployment (for the KAS address and
// agentk version it runs with) and its token Secret.
func (a *action) current(ctx context.Context, in manifest.Input) (*installed, error) {
	d, err := a.env.Cluster.GetDeployment(ctx, in.Namespace, manifest.DeploymentName(in))
	if err != nil {
		return nil, err
	}
	s, err := a.env.Cluster.GetSecret(ctx, in.Namespace, manifest.SecretName(in))
	if err != nil {
		return nil, err
	}
	if d == nil || s == nil {
		return nil, fmt.Errorf("agent %q is not installed in namespace %s (no Deployment %s or Secret %s): run install first",
			in.Name, in.Namespace, manifest.DeploymentName(in), manifest.SecretName(in))
	}
	cur := &installed{Running: RunningOf(d), secretRV: s.ResourceVersion}
	cur.tokenID, cur.token = secretToken(s)
	if cur.token == "" {
		return nil, fmt.Errorf("the Secret %s/%s holds no token: run install to create one", in.Namespace, s.Name)
	}
	return cur, nil
}

// withCurrent is the render input with what the user did not set taken
// from the running agent, and token in the Secret.
func (o Options) withCurrent(cur *installed, token string) manifest.Input {
	in := o.Input
	if !in.Set.Has(manifest.KeyKasAddress) && cur.KasAddress != "" {
		in.Values.Config.KasAddress = cur.KasAddress
	}
	if !in.Set.Has(manifest.KeyImageTag) && cur.Version != "" {
		in.Values.Image.Tag = cur.Version
	}
	in.Values.Config.Token = token
	return in
}

// UpgradeResult says what upgrade did, or with DryRun would do (Plan).
type UpgradeResult struct {
	Namespace      string  `json:"namespace"`
	ObjectsChanged int     `json:"objectsChanged"`
	UpToDate       bool    `json:"upToDate"`
	Plan           *Plan   `json:"plan,omitempty"`
	Phases         []Phase `json:"phases"`
}

// Upgrade re-renders the installed agent with new values or agentk version
// (the rest as it runs now, token included), applies and waits for the
// rollout. It needs no GitLab access.
func Upgrade(ctx context.Context, env Env, o Options) (*UpgradeResult, error) {
	a := &action{env: env}
	res, err := a.upgrade(ctx, o)
	res.Phases = a.phases
	return res, err
}

func (a *action) upgrade(ctx context.Context, o Options) (*UpgradeResult, error) {
	res := &UpgradeResult{Namespace: o.Input.Namespace}
	cur, err := a.current(ctx, o.Input)
	if err != nil {
		return res, err
	}
	in := o.withCurrent(cur, cur.token)
	var r *rendered
	if err := a.step("diff", func() (err error) {
		r, err = a.render(ctx, in, cur.tokenID)
		return err
	}); err != nil {
		return res, err
	}
	if o.DryRun {
		res.Plan = &Plan{Cluster: r.diff}
		return res, nil
	}
	res.ObjectsChanged = r.changed()
	res.UpToDate = res.ObjectsChanged == 0
	if res.UpToDate {
		return res, nil
	}
	if err := a.apply(ctx, r); err != nil {
		return res, err
	}
	if o.NoWait {
		return res, nil
	}
	return res, a.awaitReady(ctx, in, o.Timeout, nil)
}
