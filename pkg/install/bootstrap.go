package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitops"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

type schemaGVR = schema.GroupVersionResource

// BootstrapOptions are bootstrap's inputs.
type BootstrapOptions struct {
	Options
	// ManifestPath is the directory (gitops.ValidatePath'd) whose
	// gitlab-agent/ subdirectory holds the agent's files.
	ManifestPath string
	// Branch is where the files go ("": the project's default branch).
	Branch string
	// MergeRequest commits to MergeRequestBranch and opens (or updates) a
	// merge request into Branch; the cluster steps wait for its merge.
	MergeRequest  bool
	FluxNamespace string
	// Environment is the GitLab environment to wire to the agent's Flux
	// sync; "" makes none.
	Environment string
}

// The deploy token Flux reads the project with lives DeployTokenLifetime; a
// run replaces it once less than DeployTokenRenewal is left.
const (
	DeployTokenLifetime = 365 * 24 * time.Hour
	DeployTokenRenewal  = 30 * 24 * time.Hour
)

// Annotations on the objects bootstrap makes in the cluster, read by later
// runs and by uninstall.
const (
	// DeployTokenIDAnnotation on the GitRepository's Secret names the
	// deploy token it holds.
	DeployTokenIDAnnotation = "kubectl-gitlab-agent/deploy-token-id"
	// BootstrapAnnotation on the agent's token Secret is the JSON of
	// BootstrapRecord: where the agent's files are and what applies them.
	BootstrapAnnotation = "kubectl-gitlab-agent/bootstrap"
)

// BootstrapRecord is how a bootstrap set the agent up.
type BootstrapRecord struct {
	Project       string `json:"project"`
	Branch        string `json:"branch"`
	Dir           string `json:"dir"`
	Kustomization string `json:"kustomization"` // namespace/name
	GitRepository string `json:"gitRepository"` // namespace/name
	// Own: the Kustomization is bootstrap's, not one that covers Dir.
	Own bool `json:"own"`
}

// MergeRequestBranch is the branch --merge-request commits to.
func MergeRequestBranch(agent string) string { return "gitlab-agent/" + agent }

// AgentDir is the repository directory of the agent's files.
func AgentDir(manifestPath string) string { return path.Join(manifestPath, "gitlab-agent") }

// KustomizationName is the Kustomization bootstrap makes for an agent.
func KustomizationName(agent string) string { return "gitlab-agent-" + agent }

// FluxObject names a Flux object and what bootstrap did with it.
type FluxObject struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Action: created, updated, unchanged, reused (another's, left as it
	// is); a dry run's: create, apply (exists: applied again), reused.
	Action string `json:"action"`
}

func (f FluxObject) String() string { return f.Namespace + "/" + f.Name }

// FileChange is a file of the commit.
type FileChange struct {
	Action string `json:"action"`
	Path   string `json:"path"`
	// Hunks are a dry run's unified diff of the file.
	Hunks []diff.Hunk `json:"-"`
}

// BootstrapResult says what bootstrap did, or with DryRun would do.
type BootstrapResult struct {
	Agent           *gitlab.Agent        `json:"agent"`
	Project         string               `json:"project"`
	Namespace       string               `json:"namespace"`
	Registered      bool                 `json:"registered"`
	TokenID         int64                `json:"tokenID"`
	TokenCreated    bool                 `json:"tokenCreated"`
	Branch          string               `json:"branch"`
	Dir             string               `json:"dir"`
	Files           []FileChange         `json:"files"`
	Commit          *gitlab.Commit       `json:"commit,omitempty"`
	MergeRequest    *gitlab.MergeRequest `json:"mergeRequest,omitempty"`
	GitRepository   *FluxObject          `json:"gitRepository,omitempty"`
	DeployTokenID   int64                `json:"deployTokenID,omitempty"`
	DeployTokenNew  bool                 `json:"deployTokenCreated,omitempty"`
	Kustomization   *FluxObject          `json:"kustomization,omitempty"`
	Revision        string               `json:"revision,omitempty"`
	Environment     *gitlab.Environment  `json:"environment,omitempty"`
	EnvironmentDone string               `json:"environmentAction,omitempty"`
	// CI is the .gitlab-ci.yml environment: snippet for jobs that deploy
	// through the agent.
	CI        string        `json:"ci,omitempty"`
	Connected bool          `json:"connected"`
	UpToDate  bool          `json:"upToDate"`
	Agentk    *AgentVersion `json:"agentk,omitempty"`
	Phases    []Phase       `json:"phases"`
	// Plan is a dry run's GitLab and Flux changes in words.
	Plan []string `json:"plan,omitempty"`
	// DryRun is the dry run's strategy; omitted when things were done.
	DryRun DryRun `json:"dryRun,omitempty"`
	// StoppedForMerge: --merge-request, so the cluster steps were left for
	// after the merge.
	StoppedForMerge bool `json:"-"`
	// Warnings are what the user should know and fix.
	Warnings []string `json:"warnings,omitempty"`
}

// bootstrapper is one run of Bootstrap: install's steps for GitLab's side
// and the token, then the commit and Flux.
type bootstrapper struct {
	*installer
	bo     BootstrapOptions
	br     *BootstrapResult
	branch string // the branch Flux follows
	work   string // the branch committed to
	// base is the branch the commit is compared with and built on (work,
	// or the branch a new merge-request branch starts from), workExists
	// whether work exists, and prevKustomization the directory's
	// kustomization.yaml there (nil: none); checkPath reads them.
	base              string
	workExists        bool
	prevKustomization []byte
	dir               string
	files             []gitops.File
	// record is what the token Secret's annotation will say.
	record BootstrapRecord
	// grKey is the GitRepository Flux fetches the project with.
	grNS, grName string
	// deploy is the deploy token this run made (revoked if it fails), and
	// prevDeploy the one it replaced (revoked when it succeeds).
	deploy     *gitlab.DeployToken
	prevDeploy int64
	// restore puts the GitRepository's Secret back as it was when this
	// run fails after replacing it.
	restore func(ctx context.Context)
}

// Bootstrap installs the agent the GitOps way: GitLab's side as install
// does it, the token in a Secret made in the cluster, the agent's other
// objects committed to its project, a Flux GitRepository and Kustomization
// that apply them, and an environment wired to GitLab's dashboard. It waits
// until Flux applied the commit and agentk connected. Run again, it changes
// nothing, or commits what changed (an upgrade).
func Bootstrap(ctx context.Context, env Env, o BootstrapOptions) (*BootstrapResult, error) {
	i := &installer{action: action{env: env, dryRun: o.DryRun}, o: InstallOptions{Options: o.Options}, in: o.Input, start: time.Now(),
		res: &InstallResult{Namespace: o.Input.Namespace}, bootstrapping: true}
	b := &bootstrapper{installer: i, bo: o, br: &BootstrapResult{Namespace: o.Input.Namespace, DryRun: o.DryRun, Files: []FileChange{}}}
	err := b.run(ctx)
	b.br.Phases = i.phases
	b.br.Agent, b.br.Registered, b.br.TokenID, b.br.TokenCreated, b.br.Agentk = i.res.Agent, i.res.Registered, i.res.TokenID, i.res.TokenCreated, i.res.Agentk
	b.br.Plan = i.plan
	return b.br, err
}

func (b *bootstrapper) run(ctx context.Context) error {
	if b.env.Flux == nil {
		return errors.New("bootstrap needs the cluster's Flux objects, and was given no client for them")
	}
	steps := []namedStep{
		{"reach the cluster", b.reach},
		{"find Flux", b.findFlux},
		{"discover KAS", b.discover},
		{"check the manifest path", b.checkPath},
		{"register agent", b.agent},
		{"token", b.token},
		{"render", b.render},
		{"commit", b.commit},
	}
	for _, s := range steps {
		if err := b.step(s.name, func() error { return s.run(ctx) }); err != nil {
			return b.fail(ctx, err)
		}
	}
	if b.bo.MergeRequest {
		b.br.StoppedForMerge = true
		// The cluster steps need the merge: the environment does not.
		return b.fail(ctx, b.step("environment", func() error { return b.environment(ctx) }))
	}
	more := []namedStep{
		{"Flux source", b.gitRepository},
		{"Flux Kustomization", b.kustomization},
	}
	for _, s := range more {
		if err := b.step(s.name, func() error { return s.run(ctx) }); err != nil {
			return b.fail(ctx, err)
		}
	}
	if b.planning() {
		return b.fail(ctx, b.step("environment", func() error { return b.environment(ctx) }))
	}
	if err := b.recordSetup(ctx); err != nil {
		return b.fail(ctx, err)
	}
	if err := b.sync(ctx); err != nil {
		return b.fail(ctx, err)
	}
	if err := b.step("environment", func() error { return b.environment(ctx) }); err != nil {
		return b.fail(ctx, err)
	}
	b.finishDeployToken(ctx)
	b.br.UpToDate = !b.br.Registered && !b.br.TokenCreated && b.br.Commit == nil && !b.br.DeployTokenNew &&
		b.br.GitRepository.Action != "created" && b.br.Kustomization.Action != "created" && b.br.EnvironmentDone == "unchanged"
	return nil
}

// fail undoes what this run made that would otherwise be left half-done
// (the agent token and the deploy token it created, the deploy token
// Secret it replaced) and says what stays.
func (b *bootstrapper) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var notes []string
	if b.restore != nil {
		b.restore(cctx)
	}
	if b.deploy != nil {
		if rerr := b.env.GitLab.RevokeDeployToken(cctx, b.ref, b.deploy.ID); rerr != nil {
			notes = append(notes, fmt.Sprintf("revoking the deploy token %d it made failed (%v): revoke it in the project's Settings > Repository > Deploy tokens", b.deploy.ID, rerr))
		} else {
			notes = append(notes, fmt.Sprintf("the deploy token %d it made was revoked", b.deploy.ID))
		}
	}
	if b.br.Commit != nil {
		notes = append(notes, fmt.Sprintf("commit %s stays on %s", b.br.Commit.ShortID, b.work))
	}
	if fo := b.br.GitRepository; fo != nil && fo.Action == "created" {
		notes = append(notes, fmt.Sprintf("Flux's GitRepository %s stays", fo))
	}
	if fo := b.br.Kustomization; fo != nil && fo.Action == "created" {
		notes = append(notes, fmt.Sprintf("Flux's Kustomization %s stays, applying the agent", fo))
	}
	if len(notes) > 0 {
		err = fmt.Errorf("%w; %s", err, strings.Join(notes, "; "))
	}
	return b.undo(ctx, err)
}

// findFlux checks that Flux's CRDs are there, before anything changes.
func (b *bootstrapper) findFlux(ctx context.Context) error {
	return flux.Installed(ctx, b.env.Flux)
}

// discover is install's, and settles the branches and paths.
func (b *bootstrapper) discover(ctx context.Context) error {
	if err := b.installer.discover(ctx); err != nil {
		return err
	}
	if b.project.HTTPURLToRepo == "" {
		return fmt.Errorf("GitLab gave no HTTPS clone URL for %s (http_url_to_repo): Flux needs one", b.ref)
	}
	b.branch = b.bo.Branch
	if b.branch == "" {
		b.branch = b.project.DefaultBranch
	}
	if b.branch == "" {
		return fmt.Errorf("project %s has no default branch (an empty repository?): push a first commit, or pass --branch", b.ref)
	}
	b.work = b.branch
	if b.bo.MergeRequest {
		b.work = MergeRequestBranch(b.o.Name)
	}
	b.dir = AgentDir(b.bo.ManifestPath)
	b.br.Project, b.br.Branch, b.br.Dir = b.ref.Path, b.work, b.dir
	return nil
}

// checkPath refuses a manifest path that goes through a symbolic link or a
// file in the repository: what is committed stays where it is said to go.
func (b *bootstrapper) checkPath(ctx context.Context) error {
	if b.branch != b.project.DefaultBranch {
		// Found now, before a token is made: the commit would fail.
		if _, found, err := b.env.GitLab.GetBranch(ctx, b.ref, b.branch); err != nil {
			return err
		} else if !found {
			return fmt.Errorf("branch %q does not exist in %s: create it first, or pass the --branch Flux should follow", b.branch, b.ref)
		}
	}
	ref := b.work
	b.workExists = true
	if b.bo.MergeRequest {
		if _, found, err := b.env.GitLab.GetBranch(ctx, b.ref, b.work); err != nil {
			return err
		} else if !found {
			ref, b.workExists = b.branch, false
		}
	}
	b.base = ref
	parent := ""
	for _, part := range strings.Split(b.dir, "/") {
		entries, found, err := b.env.GitLab.ListTree(ctx, b.ref, parent, ref, false)
		if err != nil {
			return err
		}
		if !found {
			return nil // the rest does not exist yet
		}
		here := path.Join(parent, part)
		for _, e := range entries {
			if e.Name != part {
				continue
			}
			switch {
			case e.Mode == "120000":
				return fmt.Errorf("%s in %s is a symbolic link: bootstrap writes only to real directories; pick another --manifest-path", here, b.ref)
			case e.Type != "tree":
				return fmt.Errorf("%s in %s is a file, not a directory: pick another --manifest-path", here, b.ref)
			}
		}
		parent = here
	}
	// A kustomization.yaml bootstrap did not write is someone else's
	// directory: bootstrap would overwrite it and drop what it lists.
	k, found, err := b.env.GitLab.GetFile(ctx, b.ref, path.Join(b.dir, gitops.Kustomization), ref)
	if err != nil {
		return err
	}
	if found && !gitops.Generated(k.Content) {
		return fmt.Errorf("%s in %s was not written by bootstrap: the directory is someone else's; pick another --manifest-path, or remove it", path.Join(b.dir, gitops.Kustomization), b.ref)
	}
	if found {
		b.prevKustomization = k.Content
	}
	return nil
}

// gitInput is the render input for git: no token, the token Secret named.
func (b *bootstrapper) gitInput() manifest.Input {
	in := b.in
	in.Values.Config.Token = ""
	if !in.Set.Has("config.secretName") {
		in.Values.Config.SecretName = manifest.SecretName(in)
	}
	return in
}

// render renders the agent's files for git.
func (b *bootstrapper) render(context.Context) error {
	out, err := manifest.Render(b.gitInput())
	if err != nil {
		return err
	}
	if len(out.Embedded) > 0 {
		return fmt.Errorf("the values put a credential in Secret %s, and bootstrap commits no credential to git: create that Secret in the cluster and name it in the values instead", out.Embedded[0])
	}
	b.files, err = gitops.Files(b.o.Name, b.dir, out.Objects)
	return err
}

// commit brings the repository's agent directory (and, on the default
// branch, the agent's config file) to what render made, in one commit; or
// opens a merge request with it.
func (b *bootstrapper) commit(ctx context.Context) error {
	base, branchExists := b.base, b.workExists
	have, err := b.readDir(ctx, base)
	if err != nil {
		return err
	}
	changes := gitops.Plan(b.dir, b.files, have, b.prevKustomization)
	actions := make([]gitlab.CommitAction, 0, len(changes)+1)
	for _, c := range changes {
		actions = append(actions, gitlab.CommitAction{Action: c.Action, Path: c.Path, Content: c.Content})
		fc := FileChange{Action: c.Action, Path: c.Path}
		if b.planning() {
			old := ""
			if c.Action != "create" {
				if f, found, err := b.env.GitLab.GetFile(ctx, b.ref, c.Path, base); err == nil && found {
					old = string(f.Content)
				}
			}
			fc.Hunks = diff.Hunks(old, string(c.Content), 3)
		}
		b.br.Files = append(b.br.Files, fc)
	}
	var configDone []string
	if b.branch == b.project.DefaultBranch {
		// KAS reads the agent's config from the default branch: the
		// access goes in the same commit, or merge request.
		e, err := b.editConfig(ctx, b.project, b.o.Name, base)
		if err != nil {
			return err
		}
		if len(e.done) > 0 {
			a := gitlab.CommitAction{Action: "create", Path: agentconfig.Path(b.o.Name), Content: e.content}
			fc := FileChange{Action: "create", Path: a.Path}
			old := ""
			if e.prev != nil {
				a.Action, a.LastCommitID, fc.Action, old = "update", e.prev.LastCommitID, "update", string(e.prev.Content)
			}
			if b.planning() {
				fc.Hunks = diff.Hunks(old, string(e.content), 3)
			}
			actions = append(actions, a)
			b.br.Files = append(b.br.Files, fc)
			configDone = e.done
		}
	} else if b.bo.MergeRequest {
		// --merge-request pushes nothing to a branch directly: the config
		// file (on the default branch, where KAS reads it) is committed by
		// the run after the merge.
		b.br.Warnings = append(b.br.Warnings, fmt.Sprintf("the merge request goes into %s, and the agent's config file is on %s: the run after the merge commits the project's access to %s there",
			b.branch, b.project.DefaultBranch, agentconfig.Path(b.o.Name)))
	} else if err := b.config(ctx); err != nil {
		// KAS reads the config from the default branch only: there, on
		// its own commit.
		return err
	}
	if len(actions) == 0 {
		if b.bo.MergeRequest && branchExists {
			return b.mergeRequest(ctx)
		}
		return nil
	}
	msg := b.message(changes, configDone)
	if b.planning() {
		where := "to " + b.work
		if b.bo.MergeRequest {
			where = fmt.Sprintf("to %s and open a merge request into %s", b.work, b.branch)
		}
		b.plan = append(b.plan, fmt.Sprintf("commit %d files %s in %s", len(actions), where, b.ref))
		return nil
	}
	co := gitlab.CommitOptions{Branch: b.work, Message: msg, Actions: actions}
	if !branchExists {
		co.StartBranch = b.branch
	}
	c, err := b.env.GitLab.CreateCommit(ctx, b.ref, co)
	if err != nil {
		return fmt.Errorf("committing the agent's manifests to %s: %w", b.work, err)
	}
	b.br.Commit = c
	b.say(fmt.Sprintf("committed %d files to %s in %s (%s)", len(actions), b.work, b.ref, c.ShortID))
	if b.bo.MergeRequest {
		return b.mergeRequest(ctx)
	}
	return nil
}

// message is the commit message: what changed, and how to change it again.
func (b *bootstrapper) message(changes []gitops.Change, config []string) string {
	title := fmt.Sprintf("Update GitLab agent %s (agentk %s)", b.o.Name, b.in.Values.Image.Tag)
	if len(changes) > 0 && changes[0].Action == "create" && len(changes) == len(b.files) {
		title = fmt.Sprintf("Add GitLab agent %s (agentk %s)", b.o.Name, b.in.Values.Image.Tag)
	}
	var body strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&body, "- %s %s\n", c.Action, c.Path)
	}
	if len(config) > 0 {
		fmt.Fprintf(&body, "- %s: %s\n", agentconfig.Path(b.o.Name), strings.Join(config, ", "))
	}
	return title + "\n\n" + body.String() + "\nCommitted by kubectl gitlab-agent bootstrap. The agent's token is not in git: it is in Secret " +
		b.in.Namespace + "/" + manifest.SecretName(b.in) + " in the cluster."
}

// readDir lists the agent directory's files on ref (blob IDs); checkPath
// read its kustomization.yaml.
func (b *bootstrapper) readDir(ctx context.Context, ref string) ([]gitops.Existing, error) {
	entries, found, err := b.env.GitLab.ListTree(ctx, b.ref, b.dir, ref, false)
	if err != nil || !found {
		return nil, err
	}
	var have []gitops.Existing
	for _, e := range entries {
		if e.Type == "blob" {
			have = append(have, gitops.Existing{Path: path.Join(b.dir, e.Name), BlobID: e.ID})
		}
	}
	return have, nil
}

// mergeRequest opens the merge request of the work branch, or updates the
// open one.
func (b *bootstrapper) mergeRequest(ctx context.Context) error {
	title := fmt.Sprintf("GitLab agent %s: agentk %s", b.o.Name, b.in.Values.Image.Tag)
	desc := fmt.Sprintf("The GitLab agent **%s**, managed by Flux from `%s`.\n\nMade by `kubectl gitlab-agent bootstrap %s --merge-request`. "+
		"After the merge, run `kubectl gitlab-agent bootstrap %s` without `--merge-request` to create the Flux objects and wait for the agent. "+
		"The agent's token is not in git: it is in Secret `%s/%s` in the cluster.",
		b.o.Name, b.dir, b.o.Name, b.o.Name, b.in.Namespace, manifest.SecretName(b.in))
	mr, found, err := b.env.GitLab.FindOpenMergeRequest(ctx, b.ref, b.work, b.branch)
	if err != nil {
		return err
	}
	if found {
		if mr.Title != title || mr.Description != desc {
			if mr, err = b.env.GitLab.UpdateMergeRequest(ctx, b.ref, mr.IID, title, desc); err != nil {
				return err
			}
		}
		b.say("updated merge request " + mr.WebURL)
	} else {
		if mr, err = b.env.GitLab.CreateMergeRequest(ctx, b.ref, b.work, b.branch, title, desc); err != nil {
			return err
		}
		b.say("opened merge request " + mr.WebURL)
	}
	b.br.MergeRequest = mr
	return nil
}

// labels mark the Flux objects bootstrap makes.
func (b *bootstrapper) labels() map[string]string {
	return map[string]string{"app.kubernetes.io/managed-by": "kubectl-gitlab-agent", "app.kubernetes.io/instance": b.o.Name}
}

// ours says whether a Flux object carries the labels bootstrap gives the
// ones it makes for this agent.
func (b *bootstrapper) ours(o *unstructured.Unstructured) bool {
	l := o.GetLabels()
	return l["app.kubernetes.io/managed-by"] == "kubectl-gitlab-agent" && l["app.kubernetes.io/instance"] == b.o.Name
}

// gitRepository finds the GitRepository that fetches the project's branch
// (as 'flux bootstrap gitlab' makes one) or makes one, with a deploy token
// that may only read the repository.
func (b *bootstrapper) gitRepository(ctx context.Context) error {
	grs, err := b.env.Flux.ListObjects(ctx, flux.GitRepositories, "")
	if err != nil {
		return fmt.Errorf("listing Flux GitRepositories: %w", err)
	}
	repo := flux.Repo{URL: b.project.HTTPURLToRepo, Branch: b.branch}
	// bootstrap's own GitRepository (an earlier run's) is not another's to
	// reuse as it is: its deploy token is checked, renewed or replaced.
	var mine *unstructured.Unstructured
	for _, gr := range grs {
		if gr.GetNamespace() == b.bo.FluxNamespace && gr.GetName() == KustomizationName(b.o.Name) && b.ours(gr) &&
			flux.FindGitRepository([]*unstructured.Unstructured{gr}, repo, b.bo.FluxNamespace) != nil {
			mine = gr
		}
	}
	// Only a GitRepository in --flux-namespace is reused: one elsewhere is
	// whoever controls that namespace's, who could point it at another
	// repository (or include one) and have the agent, its rights and its
	// token, applied from there.
	if gr := flux.FindGitRepository(inNamespace(grs, b.bo.FluxNamespace), repo, b.bo.FluxNamespace); gr != nil && mine == nil {
		b.grNS, b.grName = gr.GetNamespace(), gr.GetName()
		b.br.GitRepository = &FluxObject{Namespace: b.grNS, Name: b.grName, Action: "reused"}
		if b.planning() {
			b.plan = append(b.plan, fmt.Sprintf("use GitRepository %s/%s, which fetches %s", b.grNS, b.grName, b.branch))
		}
		return nil
	}
	b.grNS, b.grName = b.bo.FluxNamespace, KustomizationName(b.o.Name)
	secretName := b.grName + "-git"
	for _, gr := range grs {
		if gr.GetNamespace() == b.grNS && gr.GetName() == b.grName && mine == nil {
			u, _, _ := unstructured.NestedString(gr.Object, "spec", "url")
			return fmt.Errorf("GitRepository %s/%s exists and fetches %s (branch %q), not %s of %s: bootstrap never rewrites another repository's source; delete it or pass another --flux-namespace",
				b.grNS, b.grName, u, flux.Branch(gr), b.branch, b.ref)
		}
	}
	b.br.GitRepository = &FluxObject{Namespace: b.grNS, Name: b.grName, Action: "created"}
	if mine != nil {
		b.br.GitRepository.Action = "unchanged"
	}
	secret, err := b.env.Flux.GetObject(ctx, flux.Secrets, b.grNS, secretName)
	if err != nil {
		return err
	}
	id, usable, err := b.usableDeployToken(ctx, secret)
	if err != nil {
		return err
	}
	if b.planning() {
		b.br.GitRepository.Action = "create"
		if mine != nil {
			b.br.GitRepository.Action = "apply"
		}
		if !usable {
			b.plan = append(b.plan, fmt.Sprintf("create a deploy token (read_repository, expires in %d days) and Secret %s/%s", int(DeployTokenLifetime.Hours()/24), b.grNS, secretName))
		}
		b.plan = append(b.plan, fmt.Sprintf("apply GitRepository %s/%s: %s, branch %s", b.grNS, b.grName, b.project.HTTPURLToRepo, b.branch))
		return nil
	}
	b.br.DeployTokenID = id
	if !usable {
		if err := b.newDeployToken(ctx, secret, secretName); err != nil {
			return err
		}
	}
	gr := flux.NewGitRepository(b.grNS, b.grName, repo, secretName, b.labels())
	return b.applyFlux(ctx, flux.GitRepositories, gr, b.br.GitRepository, grs)
}

// usableDeployToken says whether the Secret holds a deploy token of this
// project that GitLab lists as active, far from its expiry.
func (b *bootstrapper) usableDeployToken(ctx context.Context, secret *unstructured.Unstructured) (int64, bool, error) {
	if secret == nil {
		return 0, false, nil
	}
	id, _ := strconv.ParseInt(secret.GetAnnotations()[DeployTokenIDAnnotation], 10, 64)
	if id == 0 {
		return 0, false, nil
	}
	tokens, err := b.env.GitLab.ListDeployTokens(ctx, b.ref)
	if gitlab.IsClass(err, gitlab.ClassForbidden) {
		// Deploy tokens are the Maintainer's: a Developer's re-run (an
		// upgrade) keeps the one there, unchecked.
		b.br.Warnings = append(b.br.Warnings, fmt.Sprintf("deploy token %d in Secret %s/%s was not checked (listing deploy tokens needs the Maintainer role on %s)", id, secret.GetNamespace(), secret.GetName(), b.ref))
		return id, true, nil
	}
	if err != nil {
		return 0, false, err
	}
	for _, t := range tokens {
		if t.ID != id || t.Revoked || t.Expired {
			continue
		}
		if t.ExpiresAt != nil && time.Until(*t.ExpiresAt) < DeployTokenRenewal {
			b.prevDeploy = id
			return id, false, nil
		}
		return id, true, nil
	}
	return id, false, nil
}

// newDeployToken makes a read-only deploy token and writes it into the
// GitRepository's Secret; the one it replaces is revoked once the run
// succeeded.
func (b *bootstrapper) newDeployToken(ctx context.Context, old *unstructured.Unstructured, secretName string) error {
	if old != nil && old.GetLabels()["app.kubernetes.io/managed-by"] != "kubectl-gitlab-agent" {
		return fmt.Errorf("Secret %s/%s exists and is not bootstrap's (no app.kubernetes.io/managed-by=kubectl-gitlab-agent label): bootstrap does not overwrite it; delete it, or pass another --flux-namespace", b.grNS, secretName)
	}
	if err := b.ensureNamespace(ctx, b.grNS); err != nil {
		return err
	}
	dt, err := b.env.GitLab.CreateDeployToken(ctx, b.ref, "kubectl-gitlab-agent-flux-"+b.o.Name, []string{"read_repository"}, time.Now().Add(DeployTokenLifetime))
	if err != nil {
		return fmt.Errorf("creating a deploy token for Flux: %w", err)
	}
	b.deploy = dt
	if old != nil {
		if id, _ := strconv.ParseInt(old.GetAnnotations()[DeployTokenIDAnnotation], 10, 64); id != 0 {
			b.prevDeploy = id
		}
	}
	s := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{
			"name": secretName, "namespace": b.grNS,
			"annotations": map[string]any{DeployTokenIDAnnotation: strconv.FormatInt(dt.ID, 10)},
		},
		"type":       "Opaque",
		"stringData": map[string]any{"username": dt.Username, "password": dt.Token},
	}}
	s.SetLabels(b.labels())
	if _, err := b.env.Flux.ApplyObject(ctx, flux.Secrets, s, kube.FieldManager, false); err != nil {
		return fmt.Errorf("writing the deploy token into Secret %s/%s: %w", b.grNS, secretName, err)
	}
	if old != nil {
		saved := old.DeepCopy()
		b.restore = func(ctx context.Context) {
			for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp"} {
				unstructured.RemoveNestedField(saved.Object, "metadata", f)
			}
			_, _ = b.env.Flux.ApplyObject(ctx, flux.Secrets, saved, kube.FieldManager, false)
		}
	} else {
		b.restore = func(ctx context.Context) { _ = b.env.Flux.DeleteObject(ctx, flux.Secrets, b.grNS, secretName) }
	}
	b.br.DeployTokenID, b.br.DeployTokenNew = dt.ID, true
	b.say(fmt.Sprintf("created deploy token %d (read_repository) for Flux, in Secret %s/%s", dt.ID, b.grNS, secretName))
	return nil
}

// finishDeployToken revokes the deploy token a successful run replaced.
func (b *bootstrapper) finishDeployToken(ctx context.Context) {
	b.deploy, b.restore = nil, nil
	if b.prevDeploy == 0 || !b.br.DeployTokenNew {
		return
	}
	if err := b.env.GitLab.RevokeDeployToken(ctx, b.ref, b.prevDeploy); err != nil {
		b.br.Warnings = append(b.br.Warnings, fmt.Sprintf("the replaced deploy token %d could not be revoked (%v): revoke it in the project's Settings > Repository > Deploy tokens", b.prevDeploy, err))
		return
	}
	b.say(fmt.Sprintf("revoked the replaced deploy token %d", b.prevDeploy))
}

func (b *bootstrapper) ensureNamespace(ctx context.Context, ns string) error {
	if o, err := b.env.Flux.GetObject(ctx, flux.Namespaces, "", ns); err != nil || o != nil {
		return err
	}
	n := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	_, err := b.env.Flux.ApplyObject(ctx, flux.Namespaces, n, kube.FieldManager, false)
	return err
}

// applyFlux applies a Flux object of ours, noting whether it changed.
func (b *bootstrapper) applyFlux(ctx context.Context, gvr schemaGVR, o *unstructured.Unstructured, fo *FluxObject, existing []*unstructured.Unstructured) error {
	var before *unstructured.Unstructured
	for _, e := range existing {
		if e.GetNamespace() == o.GetNamespace() && e.GetName() == o.GetName() {
			before = e
		}
	}
	after, err := b.env.Flux.ApplyObject(ctx, gvr, o, kube.FieldManager, false)
	if err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	switch {
	case before == nil:
		fo.Action = "created"
		b.say(fmt.Sprintf("created %s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName()))
	case after.GetGeneration() != before.GetGeneration():
		fo.Action = "updated"
		b.say(fmt.Sprintf("updated %s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName()))
	default:
		fo.Action = "unchanged"
	}
	return nil
}

// kustomization uses a Kustomization of the GitRepository that already
// builds the agent's directory (as 'flux bootstrap gitlab”s flux-system
// builds clusters/NAME), so that no object is applied twice; else applies
// bootstrap's own.
func (b *bootstrapper) kustomization(ctx context.Context) error {
	kss, err := b.env.Flux.ListObjects(ctx, flux.Kustomizations, "")
	if err != nil {
		return fmt.Errorf("listing Flux Kustomizations: %w", err)
	}
	ownName := KustomizationName(b.o.Name)
	var own *unstructured.Unstructured
	for _, ks := range kss {
		if ks.GetNamespace() == b.bo.FluxNamespace && ks.GetName() == ownName {
			own = ks
		}
	}
	if own == nil {
		covering, err := b.covering(ctx, kss)
		if err != nil {
			return err
		}
		if covering != nil {
			b.br.Kustomization = &FluxObject{Namespace: covering.GetNamespace(), Name: covering.GetName(), Action: "reused"}
			b.record.Own = false
			if b.planning() {
				b.plan = append(b.plan, fmt.Sprintf("use Kustomization %s/%s, which builds %s already", covering.GetNamespace(), covering.GetName(), b.dir))
			} else {
				b.say(fmt.Sprintf("Kustomization %s/%s builds %s: bootstrap adds no Kustomization of its own", covering.GetNamespace(), covering.GetName(), b.dir))
			}
			return nil
		}
	} else if !flux.SourceOf(own, b.grNS, b.grName) {
		return fmt.Errorf("Kustomization %s/%s exists and builds another source than GitRepository %s/%s: bootstrap leaves it alone; delete it or pass another --flux-namespace", b.bo.FluxNamespace, ownName, b.grNS, b.grName)
	} else if own.GetLabels()["app.kubernetes.io/managed-by"] != "kubectl-gitlab-agent" {
		return fmt.Errorf("Kustomization %s/%s exists and is not bootstrap's (no app.kubernetes.io/managed-by=kubectl-gitlab-agent label): bootstrap does not rewrite it; delete it, or label it if it is", b.bo.FluxNamespace, ownName)
	}
	b.record.Own = true
	b.br.Kustomization = &FluxObject{Namespace: b.bo.FluxNamespace, Name: ownName, Action: "created"}
	ks := flux.NewKustomization(b.bo.FluxNamespace, ownName, b.grNS, b.grName, b.dir, b.labels())
	if b.planning() {
		if own != nil {
			b.br.Kustomization.Action = "apply"
		} else {
			b.br.Kustomization.Action = "create"
		}
		b.plan = append(b.plan, fmt.Sprintf("apply Kustomization %s/%s: path ./%s of GitRepository %s/%s, prune and wait", b.bo.FluxNamespace, ownName, b.dir, b.grNS, b.grName))
		return nil
	}
	return b.applyFlux(ctx, flux.Kustomizations, ks, b.br.Kustomization, kss)
}

// covering is the Kustomization of the GitRepository whose path is above
// the agent's directory with no kustomization.yaml on the way (Flux then
// generates one that takes the directory in); nil: none.
func (b *bootstrapper) covering(ctx context.Context, kss []*unstructured.Unstructured) (*unstructured.Unstructured, error) {
	skip := b.bo.FluxNamespace + "/" + KustomizationName(b.o.Name)
next:
	// A Kustomization in another namespace is a tenant's: its patches,
	// images or service account would decide what the agent runs.
	for _, ks := range flux.CoveringKustomizations(inNamespace(kss, b.bo.FluxNamespace), b.grNS, b.grName, b.dir, skip) {
		p, _, _ := unstructured.NestedString(ks.Object, "spec", "path")
		for _, d := range flux.Between(flux.CleanPath(p), b.dir) {
			_, found, err := b.env.GitLab.GetFile(ctx, b.ref, path.Join(d, gitops.Kustomization), b.branch)
			if err != nil {
				return nil, err
			}
			if found {
				continue next
			}
		}
		return ks, nil
	}
	return nil, nil
}

// inNamespace are the objects of os in ns.
func inNamespace(os []*unstructured.Unstructured, ns string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range os {
		if o.GetNamespace() == ns {
			out = append(out, o)
		}
	}
	return out
}

// recordSetup notes on the agent's token Secret where its files are and
// what applies them, for later runs and uninstall.
func (b *bootstrapper) recordSetup(ctx context.Context) error {
	b.record.Project, b.record.Branch, b.record.Dir = b.ref.Path, b.branch, b.dir
	b.record.Kustomization = b.br.Kustomization.String()
	b.record.GitRepository = b.grNS + "/" + b.grName
	rec, _ := json.Marshal(b.record)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{BootstrapAnnotation: string(rec)}}})
	if err := b.env.Flux.MergePatch(ctx, flux.Secrets, b.in.Namespace, manifest.SecretName(b.in), patch, kube.FieldManager); err != nil {
		return fmt.Errorf("recording the bootstrap on Secret %s/%s: %w", b.in.Namespace, manifest.SecretName(b.in), err)
	}
	return nil
}

// sync asks Flux to fetch the project and apply the agent's directory now,
// and waits until it has, the Deployment is available and agentk connected.
func (b *bootstrapper) sync(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	poll := b.poll(200 * time.Millisecond)
	wait := func(gvr schemaGVR, ns, name string) (*unstructured.Unstructured, error) {
		at, err := flux.RequestReconcile(wctx, b.env.Flux, gvr, ns, name, kube.FieldManager)
		if err != nil {
			return nil, err
		}
		return flux.WaitReconciled(wctx, b.env.Flux, gvr, ns, name, at, poll, func(s flux.Status) {
			b.waiting(fmt.Sprintf("waiting for Flux to reconcile %s/%s: %s", ns, name, s.Summary()))
		})
	}
	var applied string
	err := b.step("Flux fetch", func() error {
		gr, err := wait(flux.GitRepositories, b.grNS, b.grName)
		if err == nil {
			b.say(fmt.Sprintf("Flux fetched %s", flux.ReadStatus(gr).Revision))
		}
		return err
	})
	if err != nil {
		return b.explainSync(err)
	}
	err = b.step("Flux apply", func() error {
		ks, err := wait(flux.Kustomizations, b.br.Kustomization.Namespace, b.br.Kustomization.Name)
		if err == nil {
			applied = flux.ReadStatus(ks).Revision
			b.say(fmt.Sprintf("Flux applied %s with Kustomization %s", applied, b.br.Kustomization))
		}
		return err
	})
	if err != nil {
		return b.explainSync(err)
	}
	b.br.Revision = applied
	if c := b.br.Commit; c != nil && flux.RevisionSHA(applied) != c.ID {
		b.br.Warnings = append(b.br.Warnings, fmt.Sprintf("Flux applied %s, not the commit %s: the branch moved on since", applied, c.ShortID))
	}
	conn := &connection{ref: b.ref, agent: b.res.Agent, tokenID: b.res.TokenID, created: b.res.TokenCreated, since: b.start, upToDate: b.br.Commit == nil}
	if err := b.awaitReady(wctx, b.in, b.o.Timeout, conn); err != nil {
		return err
	}
	b.br.Connected = true
	return nil
}

// explainSync says which of Flux's steps did not happen.
func (b *bootstrapper) explainSync(err error) error {
	if flux.IsNotReconciled(err) && errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted while waiting for Flux to apply the agent: %w", err)
	}
	if flux.IsNotReconciled(err) {
		return fmt.Errorf("Flux did not apply the agent within --timeout %s: %w", b.o.Timeout, err)
	}
	return err
}

// environment creates or updates the GitLab environment that shows the
// agent's Flux sync on GitLab's dashboard for Kubernetes.
func (b *bootstrapper) environment(ctx context.Context) error {
	ks := b.br.Kustomization
	if ks == nil {
		ks = &FluxObject{Namespace: b.bo.FluxNamespace, Name: KustomizationName(b.o.Name)}
	}
	rp := flux.ResourcePath(ks.Namespace, ks.Name)
	b.br.CI = ciSnippet(b.bo.Environment, b.ref.Path, b.o.Name, b.in.Namespace, rp)
	if b.bo.Environment == "" {
		return nil
	}
	name := b.bo.Environment
	e, found, err := b.env.GitLab.FindEnvironment(ctx, b.ref, name)
	if err != nil {
		return fmt.Errorf("reading environment %q: %w", name, err)
	}
	ns := b.in.Namespace
	var agentID *int64
	if b.res.Agent != nil {
		agentID = &b.res.Agent.ID
	}
	o := gitlab.EnvironmentOptions{ClusterAgentID: agentID, KubernetesNamespace: &ns, FluxResourcePath: &rp}
	switch {
	case !found && b.planning():
		b.plan = append(b.plan, fmt.Sprintf("create environment %q (agent %s, namespace %s, Flux %s)", name, b.o.Name, ns, rp))
		b.br.EnvironmentDone = "create"
		return nil
	case !found:
		if agentID == nil {
			return nil
		}
		e, err = b.env.GitLab.CreateEnvironment(ctx, b.ref, name, o)
		b.br.EnvironmentDone = "created"
	case sameEnvironment(e, agentID, ns, rp):
		b.br.EnvironmentDone = "unchanged"
	case b.planning():
		b.plan = append(b.plan, fmt.Sprintf("update environment %q (agent %s, namespace %s, Flux %s)", name, b.o.Name, ns, rp))
		b.br.EnvironmentDone = "update"
		return nil
	default:
		e, err = b.env.GitLab.UpdateEnvironment(ctx, b.ref, e.ID, o)
		b.br.EnvironmentDone = "updated"
	}
	if err != nil {
		return fmt.Errorf("writing environment %q: %w", name, err)
	}
	b.br.Environment = e
	if b.br.EnvironmentDone != "unchanged" {
		b.say(fmt.Sprintf("%s environment %q: GitLab's dashboard for Kubernetes shows the agent's Flux sync", b.br.EnvironmentDone, name))
	}
	return nil
}

func sameEnvironment(e *gitlab.Environment, agentID *int64, ns, rp string) bool {
	return e.ClusterAgentID != nil && agentID != nil && *e.ClusterAgentID == *agentID &&
		e.KubernetesNamespace == ns && e.FluxResourcePath == rp
}

// ciSnippet is the environment: block of a job that deploys through the
// agent, as GitLab 18.4 spells it (dashboard: replaces kubernetes:
// namespace and flux_resource_path).
func ciSnippet(env, project, agent, ns, resourcePath string) string {
	name := env
	if name == "" {
		name = "agents/" + agent
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return "deploy:\n" +
		"  environment:\n" +
		"    name: " + q(name) + "\n" +
		"    kubernetes:\n" +
		"      agent: " + q(project+":"+agent) + "\n" +
		"      dashboard:\n" +
		"        namespace: " + q(ns) + "\n" +
		"        flux_resource_path: " + q(resourcePath) + "\n"
}
