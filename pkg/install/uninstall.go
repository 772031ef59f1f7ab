package install

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// UninstallOptions are uninstall's inputs.
type UninstallOptions struct {
	Options
	RevokeTokens bool
	DeleteAgent  bool
	// Confirm asks the user; it is called once, with what would go.
	Confirm func(question string) (bool, error)
}

// UninstallResult says what uninstall removed.
type UninstallResult struct {
	Deleted       []string `json:"deleted"`
	RevokedTokens []int64  `json:"revokedTokens,omitempty"`
	AgentDeleted  bool     `json:"agentDeleted"`
}

// Uninstall deletes the objects the install owns (found by the install's
// labels, the Namespace last) and waits until they are gone; then, when
// asked, revokes the agent's tokens or deletes its registration.
func Uninstall(ctx context.Context, env Env, o UninstallOptions) (*UninstallResult, error) {
	res := &UninstallResult{}
	in := o.Input
	sel := selector(in)
	objs, err := env.Kube.SelectedObjects(ctx, sel, []string{in.Namespace})
	if err != nil {
		return res, fmt.Errorf("finding the install's objects (%s): %w", sel, err)
	}
	var names []string
	for _, obj := range objs {
		names = append(names, kube.RefOf(obj).String())
	}
	sort.Strings(names)
	var a *gitlab.Agent
	if o.RevokeTokens || o.DeleteAgent {
		if env.GitLab == nil {
			return res, fmt.Errorf("--revoke-tokens and --delete-agent need GitLab credentials (GITLAB_TOKEN)")
		}
		if a, err = env.GitLab.FindAgent(ctx, o.Project, gitlab.AgentRef{Name: o.Name}); err != nil {
			return res, err
		}
	}
	if len(objs) == 0 && a == nil {
		env.say("nothing of agent %q is installed in namespace %s", o.Name, in.Namespace)
		return res, nil
	}
	q := fmt.Sprintf("Delete %d objects of agent %q (%s)", len(objs), o.Name, strings.Join(names, ", "))
	if o.RevokeTokens {
		q += ", revoke its tokens"
	}
	if o.DeleteAgent {
		q += ", delete its registration in " + o.Project.String()
	}
	if !o.Yes {
		ok, err := o.Confirm(q + "?")
		if err != nil {
			return res, err
		}
		if !ok {
			return res, fmt.Errorf("nothing was deleted")
		}
	}
	if err := env.Kube.DeleteAndWait(ctx, objs); err != nil {
		return res, err
	}
	res.Deleted = names
	env.say("deleted %d objects of agent %q", len(objs), o.Name)
	if o.RevokeTokens {
		tokens, err := env.GitLab.ListTokens(ctx, o.Project, a)
		if err != nil {
			return res, err
		}
		for _, t := range tokens {
			if err := env.GitLab.RevokeToken(ctx, o.Project, a, t.ID); err != nil {
				return res, err
			}
			res.RevokedTokens = append(res.RevokedTokens, t.ID)
		}
		env.say("revoked %d tokens of agent %q", len(tokens), o.Name)
	}
	if o.DeleteAgent {
		if err := env.GitLab.DeleteAgent(ctx, o.Project, a); err != nil {
			return res, err
		}
		res.AgentDeleted = true
		env.say("deleted agent %q from %s", o.Name, o.Project)
	}
	return res, nil
}

// selector finds an install's objects: the chart's selector labels, which
// a chart install carries as well.
func selector(in manifest.Input) string {
	labels := manifest.SelectorLabels(in)
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}
