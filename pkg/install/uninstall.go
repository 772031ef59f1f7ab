package install

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// UninstallOptions are uninstall's inputs.
type UninstallOptions struct {
	Options
	RevokeTokens bool
	DeleteAgent  bool
	// Confirm asks the user, unless Yes; it is called once, with what
	// would go.
	Confirm func(question string) (bool, error)
}

// UninstallResult says what uninstall removed, or with DryRun would
// remove.
type UninstallResult struct {
	Deleted       []string `json:"deleted"`
	RevokedTokens []int64  `json:"revokedTokens,omitempty"`
	// DeletedURLConfigurations: a receptive agent's, deleted with it.
	DeletedURLConfigurations []int64 `json:"deletedURLConfigurations,omitempty"`
	AgentDeleted             bool    `json:"agentDeleted"`
	// Bootstrap is what was undone of a bootstrapped agent's GitOps setup.
	Bootstrap *BootstrapUninstall `json:"bootstrap,omitempty"`
	// Plan is a dry run's GitLab and Flux changes in words.
	Plan []string `json:"plan,omitempty"`
	// DryRun is the dry run's strategy; omitted when things were done.
	DryRun DryRun `json:"dryRun,omitempty"`
}

// ofInstall says whether o, found by the install's labels, is of this
// install (manifest.Input.Owns).
func ofInstall(in manifest.Input, o *unstructured.Unstructured) bool {
	return in.Owns(o.GetNamespace(), o.GetName())
}

// ErrNotConfirmed is a confirmation the user declined.
var ErrNotConfirmed = errors.New("nothing was deleted")

// Uninstall deletes the objects the install owns (found by the install's
// labels, the Namespace last) and waits until they are gone; then, when
// asked, revokes the agent's tokens or deletes its registration.
func Uninstall(ctx context.Context, env Env, o UninstallOptions) (*UninstallResult, error) {
	a := &action{env: env, dryRun: o.DryRun}
	res := &UninstallResult{DryRun: o.DryRun}
	in := o.Input
	if err := env.Cluster.Reachable(ctx); err != nil {
		return res, err
	}
	// Timeout bounds what the cluster is asked, not the user's answer or
	// GitLab's calls (each bounded on its own): a wait that took most of
	// it must not cut the revocations short.
	cluster := func() (context.Context, context.CancelFunc) {
		if o.Timeout <= 0 {
			return context.WithCancel(ctx)
		}
		return context.WithTimeout(ctx, o.Timeout)
	}
	if done, err := a.uninstallFlux(ctx, &o, res); err != nil || done {
		return res, err
	}
	sel := manifest.Selector(in)
	cctx, cancel := cluster()
	found, err := env.Cluster.SelectedObjects(cctx, sel, []string{in.Namespace}, nil)
	cancel()
	if err != nil {
		return res, fmt.Errorf("finding the install's objects (%s): %w", sel, err)
	}
	var objs []*unstructured.Unstructured
	var names []string
	for _, obj := range found {
		if ofInstall(in, obj) {
			objs = append(objs, obj)
			names = append(names, kube.RefOf(obj).String())
		}
	}
	sort.Strings(names)
	var ag *gitlab.Agent
	if o.RevokeTokens || o.DeleteAgent {
		if env.GitLab == nil {
			return res, errors.New("revoking the agent's tokens or deleting it needs GitLab credentials")
		}
		if ag, err = env.GitLab.FindAgent(ctx, o.Project, gitlab.AgentRef{Name: o.Name}); err != nil {
			return res, err
		}
	}
	var urls []*gitlab.URLConfiguration
	if o.DeleteAgent {
		if urls, err = urlConfigurations(ctx, env.GitLab, o.Project, ag); err != nil {
			return res, err
		}
	}
	if len(objs) == 0 && ag == nil {
		a.say(fmt.Sprintf("nothing of agent %q is installed in namespace %s", o.Name, in.Namespace))
		return res, nil
	}
	if a.planning() {
		for _, u := range urls {
			res.DeletedURLConfigurations = append(res.DeletedURLConfigurations, u.ID)
		}
		return res, a.plannedUninstall(ctx, o, ag, objs, names, res, cluster)
	}
	q := fmt.Sprintf("Delete %d objects of agent %q (%s)", len(objs), o.Name, strings.Join(names, ", "))
	if o.RevokeTokens {
		q += ", revoke its tokens"
	}
	for _, u := range urls {
		q += fmt.Sprintf(", delete its URL configuration %d (%s)", u.ID, describeURLConfiguration(u))
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
			return res, ErrNotConfirmed
		}
	}
	cctx, cancel = cluster()
	err = env.Cluster.DeleteAndWait(cctx, objs)
	cancel()
	if err != nil {
		return res, err
	}
	res.Deleted = names
	a.say(fmt.Sprintf("deleted %d objects of agent %q", len(objs), o.Name))
	if o.RevokeTokens {
		tokens, err := env.GitLab.ListTokens(ctx, o.Project, ag)
		if err != nil {
			return res, err
		}
		for _, t := range tokens {
			if err := env.GitLab.RevokeToken(ctx, o.Project, ag, t.ID); err != nil {
				return res, err
			}
			res.RevokedTokens = append(res.RevokedTokens, t.ID)
		}
		a.say(fmt.Sprintf("revoked %d tokens of agent %q", len(tokens), o.Name))
	}
	for _, u := range urls {
		if err := env.GitLab.DeleteURLConfiguration(ctx, o.Project, ag, u.ID); err != nil {
			return res, err
		}
		res.DeletedURLConfigurations = append(res.DeletedURLConfigurations, u.ID)
		a.say(fmt.Sprintf("deleted URL configuration %d of agent %q", u.ID, o.Name))
	}
	if o.DeleteAgent {
		if err := env.GitLab.DeleteAgent(ctx, o.Project, ag); err != nil {
			return res, err
		}
		res.AgentDeleted = true
		a.say(fmt.Sprintf("deleted agent %q from %s", o.Name, o.Project))
	}
	return res, nil
}

// uninstallFlux takes a bootstrapped agent out of git and Flux first (after
// asking), so that Flux does not apply again what uninstall deletes; an
// agent Flux applies otherwise is refused. done: a dry run has planned
// it all, or the user said no.
func (a *action) uninstallFlux(ctx context.Context, o *UninstallOptions, res *UninstallResult) (done bool, err error) {
	rec, by, err := a.fluxManaged(ctx, o.Input)
	if err != nil || by == "" {
		return false, err
	}
	if rec == nil {
		return true, &FluxManagedError{Agent: o.Name, By: by, Verb: "uninstall"}
	}
	if !a.planning() && !o.Yes {
		q := fmt.Sprintf("Agent %q is managed by Flux: remove its files %s from %s (a commit to %s), delete what Flux applied, then its token Secret", o.Name, rec.Dir, rec.Project, rec.Branch)
		if o.RevokeTokens {
			q += ", revoke its tokens"
		}
		if o.DeleteAgent {
			q += ", delete its registration"
		}
		ok, err := o.Confirm(q + "?")
		if err != nil {
			return true, err
		}
		if !ok {
			return true, ErrNotConfirmed
		}
		o.Yes = true
	}
	if err := a.unbootstrap(ctx, *o, rec, res); err != nil {
		return true, err
	}
	res.Plan = a.plan
	return false, nil
}

// plannedUninstall fills res with what uninstall would remove, asking no
// question: in a server dry run the cluster dry-runs each deletion first.
func (a *action) plannedUninstall(ctx context.Context, o UninstallOptions, ag *gitlab.Agent, objs []*unstructured.Unstructured,
	names []string, res *UninstallResult, cluster func() (context.Context, context.CancelFunc)) error {
	cctx, cancel := cluster()
	err := a.deleteDryRun(cctx, objs)
	cancel()
	if err != nil {
		return err
	}
	res.Deleted = names
	if o.RevokeTokens {
		tokens, err := a.env.GitLab.ListTokens(ctx, o.Project, ag)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			res.RevokedTokens = append(res.RevokedTokens, t.ID)
		}
	}
	res.AgentDeleted = o.DeleteAgent
	return nil
}
