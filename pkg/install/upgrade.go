package install

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// installed is the agent as it runs in the cluster.
type installed struct {
	deployment *appsv1.Deployment
	kasAddress string
	tag        string
	tokenID    int64
	token      string
	// secretRV is the token Secret's resourceVersion as read.
	secretRV string
}

// current reads the installed agent: its Deployment (for the KAS address and
// agentk version it runs with) and its token Secret.
func current(ctx context.Context, env Env, in manifest.Input) (*installed, error) {
	d, err := env.Kube.GetDeployment(ctx, in.Namespace, manifest.DeploymentName(in))
	if err != nil {
		return nil, err
	}
	s, err := env.Kube.GetSecret(ctx, in.Namespace, manifest.SecretName(in))
	if err != nil {
		return nil, err
	}
	if d == nil || s == nil {
		return nil, fmt.Errorf("agent %q is not installed in namespace %s (no Deployment %s or Secret %s): run install first",
			in.Name, in.Namespace, manifest.DeploymentName(in), manifest.SecretName(in))
	}
	cur := &installed{deployment: d, secretRV: s.ResourceVersion}
	cur.tokenID, cur.token = secretToken(s)
	if cur.token == "" {
		return nil, fmt.Errorf("Secret %s/%s holds no token: run install to create one", in.Namespace, s.Name)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != manifest.ChartName {
			continue
		}
		if i := strings.LastIndex(c.Image, ":"); i >= 0 {
			cur.tag = c.Image[i+1:]
		}
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--kas-address="); ok {
				cur.kasAddress = v
			}
		}
	}
	return cur, nil
}

// withCurrent fills what the user did not choose from the running agent.
func (o Options) withCurrent(cur *installed, token string, tokenID int64) manifest.Input {
	in := o.Input
	if !o.KasAddressSet && cur.kasAddress != "" {
		in.Values.Config.KasAddress = cur.kasAddress
	}
	if !o.AgentVersionSet && in.Values.Image.Tag == "" && cur.tag != "" {
		in.Values.Image.Tag = cur.tag
	}
	in.Values.Config.Token = token
	return in
}

// UpgradeResult says what upgrade did.
type UpgradeResult struct {
	ObjectsChanged int     `json:"objectsChanged"`
	UpToDate       bool    `json:"upToDate"`
	Phases         []Phase `json:"phases"`
}

// Upgrade re-renders the installed agent with new values or agentk version
// (the rest as it runs now, token included), applies and waits. It needs no
// GitLab access.
func Upgrade(ctx context.Context, env Env, o Options) (*UpgradeResult, error) {
	res := &UpgradeResult{}
	ph := &phases{env: env, start: time.Now()}
	defer func() { res.Phases = ph.list }()
	cur, err := current(ctx, env, o.Input)
	if err != nil {
		return res, err
	}
	in := o.withCurrent(cur, cur.token, cur.tokenID)
	targets, d, err := renderAndDiff(ctx, env, in, cur.tokenID)
	if err != nil {
		return res, err
	}
	if o.DryRun {
		return res, printPlan(o.Out, nil, d, env.NoColor)
	}
	res.ObjectsChanged = changedCount(d)
	res.UpToDate = res.ObjectsChanged == 0
	if res.UpToDate {
		return res, nil
	}
	if err := ph.run("apply", func() error { return env.Kube.ApplyAll(ctx, targets, kube.FieldManager) }); err != nil {
		return res, fmt.Errorf("applying the agent's objects: %w", err)
	}
	env.say("applied %d objects in namespace %s", res.ObjectsChanged, in.Namespace)
	if o.NoWait {
		return res, nil
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return res, ph.run("rollout", func() error { return waitRollout(wctx, env, in) })
}
