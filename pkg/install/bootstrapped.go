package install

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitops"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// FluxManagedError is an action that would change by hand an agent that
// Flux applies from git: Flux would undo it at its next reconcile.
type FluxManagedError struct {
	Agent string
	// Record is bootstrap's record (nil: Flux applies it, but not as
	// bootstrap set it up).
	Record *BootstrapRecord
	// By names what applies it: Kustomization ns/name or HelmRelease ns/name.
	By string
	// Verb is what was refused.
	Verb string
}

func (e *FluxManagedError) Error() string {
	if e.Record != nil {
		return fmt.Sprintf("agent %q is managed by Flux (%s) from %s/%s on branch %s: a %s here would be undone at Flux's next reconcile; run 'kubectl gitlab-agent bootstrap %s --project %s --manifest-path %s' with the new values or --agent-version instead",
			e.Agent, e.By, e.Record.Project, e.Record.Dir, e.Record.Branch, e.Verb, e.Agent, e.Record.Project, path.Dir(e.Record.Dir))
	}
	return fmt.Sprintf("agent %q is managed by Flux (%s): a %s here would be undone at Flux's next reconcile; change it where Flux reads it from", e.Agent, e.By, e.Verb)
}

// fluxManaged says whether Flux applies the agent of in: bootstrap's record
// on its token Secret, or Flux's labels on its Deployment. nil, "" when it
// does not.
func (a *action) fluxManaged(ctx context.Context, in manifest.Input) (*BootstrapRecord, string, error) {
	var rec *BootstrapRecord
	s, err := a.env.Cluster.GetSecret(ctx, in.Namespace, manifest.SecretName(in))
	if err != nil {
		return nil, "", fmt.Errorf("reading the agent's token Secret: %w", err)
	}
	if s != nil && s.Annotations[BootstrapAnnotation] != "" {
		rec = &BootstrapRecord{}
		if err := json.Unmarshal([]byte(s.Annotations[BootstrapAnnotation]), rec); err != nil || rec.Dir == "" || rec.Project == "" {
			return nil, "", fmt.Errorf("the agent's token Secret %s/%s has an annotation %s that cannot be read: remove it, or run bootstrap again", in.Namespace, s.Name, BootstrapAnnotation)
		}
		return rec, "Kustomization " + rec.Kustomization, nil
	}
	d, err := a.env.Cluster.GetDeployment(ctx, in.Namespace, manifest.DeploymentName(in))
	if err != nil || d == nil {
		return nil, "", err
	}
	l := d.Labels
	switch {
	case l[flux.NameLabel] != "":
		return nil, "Kustomization " + l[flux.NamespaceLabel] + "/" + l[flux.NameLabel], nil
	case l["helm.toolkit.fluxcd.io/name"] != "":
		return nil, "HelmRelease " + l["helm.toolkit.fluxcd.io/namespace"] + "/" + l["helm.toolkit.fluxcd.io/name"], nil
	}
	return nil, "", nil
}

// refuseFluxManaged stops an action that would change a Flux-managed agent
// by hand.
func (a *action) refuseFluxManaged(ctx context.Context, name string, in manifest.Input, verb string) error {
	rec, by, err := a.fluxManaged(ctx, in)
	if err != nil || by == "" {
		return err
	}
	return &FluxManagedError{Agent: name, Record: rec, By: by, Verb: verb}
}

// BootstrapUninstall is what uninstall did to a bootstrapped agent's GitOps
// setup.
type BootstrapUninstall struct {
	Project string         `json:"project"`
	Branch  string         `json:"branch"`
	Dir     string         `json:"dir"`
	Commit  *gitlab.Commit `json:"commit,omitempty"`
	// Removed are the files the commit removes.
	Removed []string `json:"removed"`
	// Flux are the Flux objects deleted (namespace/name), or reconciled
	// to prune.
	Flux                []string `json:"flux"`
	RevokedDeployTokens []int64  `json:"revokedDeployTokens,omitempty"`
}

// unbootstrap takes a bootstrapped agent out of git and Flux: a commit
// removes its files, then its own Kustomization is deleted (Flux prunes what
// it applied) or the Kustomization that covers the directory reconciled (it
// prunes them), then bootstrap's GitRepository goes when nothing else uses
// it, its deploy token revoked. The token Secret and what Flux did not prune
// are uninstall's to delete after.
func (a *action) unbootstrap(ctx context.Context, o UninstallOptions, rec *BootstrapRecord, res *UninstallResult) error {
	if a.env.GitLab == nil {
		return fmt.Errorf("agent %q is managed by Flux from %s: uninstall removes its files by a commit, which needs GitLab credentials (GITLAB_TOKEN or --gitlab-token-file)", o.Name, rec.Project)
	}
	if a.env.Flux == nil {
		return fmt.Errorf("agent %q is managed by Flux, and no client for Flux's objects was given", o.Name)
	}
	// The record is cluster data: whoever may write the token Secret may
	// have written it. Only bootstrap's directory, its generated files and
	// its own Kustomization are taken.
	if d, err := gitops.ValidatePath(rec.Dir); err != nil || d != rec.Dir || path.Base(d) != "gitlab-agent" {
		return fmt.Errorf("the record on agent %q's token Secret names %q, which is not a directory bootstrap writes: uninstall leaves git and Flux as they are", o.Name, rec.Dir)
	}
	ksNS, ksName, _ := strings.Cut(rec.Kustomization, "/")
	if rec.Own {
		ks, err := a.env.Flux.GetObject(ctx, flux.Kustomizations, ksNS, ksName)
		if err != nil {
			return err
		}
		if ks != nil && (ksName != KustomizationName(o.Name) || ks.GetLabels()["app.kubernetes.io/managed-by"] != "kubectl-gitlab-agent" ||
			ks.GetLabels()["app.kubernetes.io/instance"] != o.Name) {
			return fmt.Errorf("Kustomization %s, which the record on agent %q's token Secret names, was not made by bootstrap for it: uninstall leaves git and Flux as they are", rec.Kustomization, o.Name)
		}
	}
	ref := gitlab.ProjectRef{Path: rec.Project}
	u := &BootstrapUninstall{Project: rec.Project, Branch: rec.Branch, Dir: rec.Dir, Removed: []string{}, Flux: []string{}}
	res.Bootstrap = u
	entries, found, err := a.env.GitLab.ListTree(ctx, ref, rec.Dir, rec.Branch, false)
	if err != nil {
		return err
	}
	var have []gitops.Existing
	var actions []gitlab.CommitAction
	if found {
		for _, e := range entries {
			if e.Type == "blob" {
				have = append(have, gitops.Existing{Path: path.Join(rec.Dir, e.Name), BlobID: e.ID})
			}
		}
		kpath := path.Join(rec.Dir, gitops.Kustomization)
		k, kfound, err := a.env.GitLab.GetFile(ctx, ref, kpath, rec.Branch)
		if err != nil {
			return err
		}
		if kfound && !gitops.Generated(k.Content) {
			return fmt.Errorf("%s in %s was not written by bootstrap: uninstall leaves that directory as it is", kpath, rec.Project)
		}
		if kfound {
			for _, c := range gitops.Plan(rec.Dir, nil, have, k.Content) {
				actions = append(actions, gitlab.CommitAction{Action: "delete", Path: c.Path})
			}
			actions = append(actions, gitlab.CommitAction{Action: "delete", Path: kpath})
		}
	}
	for _, c := range actions {
		u.Removed = append(u.Removed, c.Path)
	}
	grNS, grName, _ := strings.Cut(rec.GitRepository, "/")
	ours := a.oursGitRepository(ctx, grNS, grName, o.Name)
	if a.planning() {
		if len(actions) > 0 {
			a.plan = append(a.plan, fmt.Sprintf("commit the removal of %d files of %s to %s in %s", len(actions), rec.Dir, rec.Branch, rec.Project))
		}
		if rec.Own {
			u.Flux = append(u.Flux, "Kustomization "+rec.Kustomization)
		}
		if ours {
			u.Flux = append(u.Flux, "GitRepository "+rec.GitRepository)
		}
		return nil
	}
	if len(actions) > 0 {
		c, err := a.env.GitLab.CreateCommit(ctx, ref, gitlab.CommitOptions{
			Branch: rec.Branch, Actions: actions,
			Message: fmt.Sprintf("Remove GitLab agent %s\n\nCommitted by kubectl gitlab-agent uninstall.", o.Name),
		})
		if err != nil {
			return fmt.Errorf("committing the removal of %s: %w", rec.Dir, err)
		}
		u.Commit = c
		a.say(fmt.Sprintf("committed the removal of %d files of %s to %s (%s)", len(actions), rec.Dir, rec.Branch, c.ShortID))
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if rec.Own {
		if err := a.deleteFlux(wctx, flux.Kustomizations, ksNS, ksName); err != nil {
			return err
		}
		u.Flux = append(u.Flux, "Kustomization "+rec.Kustomization)
		a.say(fmt.Sprintf("deleted Kustomization %s: Flux pruned what it applied", rec.Kustomization))
	} else if err := a.prune(wctx, grNS, grName, ksNS, ksName); err != nil {
		return err
	} else {
		u.Flux = append(u.Flux, "Kustomization "+rec.Kustomization+" (reconciled)")
	}
	if ours && !a.gitRepositoryUsed(ctx, grNS, grName) {
		if err := a.deleteFlux(wctx, flux.GitRepositories, grNS, grName); err != nil {
			return err
		}
		u.Flux = append(u.Flux, "GitRepository "+rec.GitRepository)
		secret, err := a.env.Flux.GetObject(ctx, flux.Secrets, grNS, grName+"-git")
		if err != nil {
			return err
		}
		if secret != nil {
			if id, _ := strconv.ParseInt(secret.GetAnnotations()[DeployTokenIDAnnotation], 10, 64); id != 0 {
				if err := a.env.GitLab.RevokeDeployToken(ctx, ref, id); err != nil {
					return fmt.Errorf("revoking the deploy token %d Flux read the project with: %w", id, err)
				}
				u.RevokedDeployTokens = append(u.RevokedDeployTokens, id)
			}
			if err := a.env.Flux.DeleteObject(ctx, flux.Secrets, grNS, grName+"-git"); err != nil {
				return err
			}
		}
		a.say(fmt.Sprintf("deleted GitRepository %s and revoked its deploy token", rec.GitRepository))
	}
	return nil
}

// oursGitRepository says whether ns/name is the GitRepository bootstrap
// made for agent (its name and our label).
func (a *action) oursGitRepository(ctx context.Context, ns, name, agent string) bool {
	if name != KustomizationName(agent) {
		return false
	}
	gr, err := a.env.Flux.GetObject(ctx, flux.GitRepositories, ns, name)
	return err == nil && gr != nil && gr.GetLabels()["app.kubernetes.io/managed-by"] == "kubectl-gitlab-agent"
}

// gitRepositoryUsed says whether a Kustomization still builds from ns/name
// (true when that cannot be told).
func (a *action) gitRepositoryUsed(ctx context.Context, ns, name string) bool {
	kss, err := a.env.Flux.ListObjects(ctx, flux.Kustomizations, "")
	if err != nil {
		return true
	}
	for _, ks := range kss {
		if ks.GetDeletionTimestamp() == nil && flux.SourceOf(ks, ns, name) {
			return true
		}
	}
	return false
}

// deleteFlux deletes a Flux object and waits until it is gone (its
// controller's finalizer runs first: a Kustomization prunes).
func (a *action) deleteFlux(ctx context.Context, gvr schemaGVR, ns, name string) error {
	if err := a.env.Flux.DeleteObject(ctx, gvr, ns, name); err != nil {
		return err
	}
	for {
		o, err := a.env.Flux.GetObject(ctx, gvr, ns, name)
		if err == nil && o == nil {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
		a.waiting(fmt.Sprintf("waiting for Flux to finalize %s %s/%s", gvr.Resource, ns, name))
		if !sleep(ctx, a.poll(500*time.Millisecond)) {
			return fmt.Errorf("%s %s/%s is not gone yet (is its Flux controller running?): %w", gvr.Resource, ns, name, ctx.Err())
		}
	}
}

// prune has Flux fetch the commit and reconcile the Kustomization that
// covers the agent's directory, which prunes its objects.
func (a *action) prune(ctx context.Context, grNS, grName, ksNS, ksName string) error {
	for _, o := range []struct {
		gvr      schemaGVR
		ns, name string
	}{{flux.GitRepositories, grNS, grName}, {flux.Kustomizations, ksNS, ksName}} {
		at, err := flux.RequestReconcile(ctx, a.env.Flux, o.gvr, o.ns, o.name, kube.FieldManager)
		if err != nil {
			return err
		}
		if _, err := flux.WaitReconciled(ctx, a.env.Flux, o.gvr, o.ns, o.name, at, a.poll(500*time.Millisecond), func(s flux.Status) {
			a.waiting(fmt.Sprintf("waiting for Flux to reconcile %s/%s: %s", o.ns, o.name, s.Summary()))
		}); err != nil {
			return err
		}
	}
	a.say(fmt.Sprintf("Flux reconciled Kustomization %s/%s without the agent's files", ksNS, ksName))
	return nil
}
