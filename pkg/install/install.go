// Package install runs the agent's lifecycle against GitLab and a cluster:
// install, upgrade, uninstall, token rotation and status. Commands map flags
// onto these actions' inputs and print their results.
package install

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// TokenIDAnnotation on the token Secret names the GitLab token it holds, so
// that a later install can tell whether GitLab still accepts it.
const TokenIDAnnotation = "kubectl-gitlab-agent/token-id"

// Env is what the actions work with.
type Env struct {
	GitLab *gitlab.Client
	Kube   *kube.Client
	// Log receives progress and what was done (stderr).
	Log     io.Writer
	Verbose int
	NoColor bool
}

func (e Env) say(format string, args ...any) { fmt.Fprintf(e.Log, format+"\n", args...) }

// phases times the steps of an action for -v output.
type phases struct {
	env   Env
	start time.Time
	list  []Phase
}

// Phase is one timed step.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
}

func (p *phases) run(name string, fn func() error) error {
	t := time.Now()
	err := fn()
	d := time.Since(t)
	p.list = append(p.list, Phase{Name: name, Duration: d})
	if p.env.Verbose >= 1 {
		p.env.say("  %-22s %s", name, d.Round(time.Millisecond))
	}
	return err
}

// Options are the inputs every lifecycle action shares.
type Options struct {
	Name    string
	Project gitlab.ProjectRef
	// Input is the render input (values, namespace) from the render flags.
	Input manifest.Input
	// KasAddressSet and AgentVersionSet tell whether the user chose them;
	// otherwise they come from GitLab (install) or the running agent
	// (upgrade, rotate).
	KasAddressSet, AgentVersionSet bool
	Yes                            bool
	DryRun                         bool
	NoWait                         bool
	// Timeout bounds the wait for the rollout and the connection.
	Timeout time.Duration
	// Out receives the dry-run plan and diff (stdout).
	Out io.Writer
}

// InstallOptions are install's inputs.
type InstallOptions struct {
	Options
	NoConfig bool
}

// InstallResult says what install did.
type InstallResult struct {
	Agent           *gitlab.Agent `json:"agent"`
	Registered      bool          `json:"registered"`
	ConfigCommitted bool          `json:"configCommitted"`
	TokenID         int64         `json:"tokenID"`
	TokenCreated    bool          `json:"tokenCreated"`
	// SecretWritten: the new token went into the Secret (before the rest).
	SecretWritten  bool    `json:"secretWritten"`
	ObjectsChanged int     `json:"objectsChanged"`
	UpToDate       bool    `json:"upToDate"`
	Connected      bool    `json:"connected"`
	Phases         []Phase `json:"phases"`
}

// Install registers, configures, deploys and connects an agent; see the
// package's command for the steps. Re-running it with the same inputs
// changes nothing. If anything fails after a token was created (or ctx is
// cancelled), that token is revoked and the error says what stays.
func Install(ctx context.Context, env Env, o InstallOptions) (res *InstallResult, err error) {
	res = &InstallResult{}
	ph := &phases{env: env, start: time.Now()}
	defer func() { res.Phases = ph.list }()
	in := o.Input
	var project *gitlab.Project
	var kas *gitlab.KAS

	// The cluster first: an install that cannot reach it must not have
	// registered an agent or created a token on the way.
	if err := ph.run("reach the cluster", func() error { return env.Kube.Reachable(ctx) }); err != nil {
		return res, fmt.Errorf("%w; nothing was changed in GitLab", err)
	}
	if err := ph.run("discover KAS", func() (err error) {
		if kas, err = env.GitLab.DiscoverKAS(ctx); err != nil {
			return err
		}
		project, err = env.GitLab.GetProject(ctx, o.Project)
		return err
	}); err != nil {
		return res, err
	}
	if !o.KasAddressSet {
		in.Values.Config.KasAddress = kas.AgentURL
	}
	if !o.AgentVersionSet && in.Values.Image.Tag == "" && kas.Version != "" {
		in.Values.Image.Tag = "v" + strings.TrimPrefix(kas.Version, "v")
	}
	ref := gitlab.ProjectRef{Path: project.PathWithNamespace}

	var plan []string
	if err := ph.run("register agent", func() error {
		if o.DryRun {
			a, err := env.GitLab.FindAgent(ctx, ref, gitlab.AgentRef{Name: o.Name})
			if gitlab.IsClass(err, gitlab.ClassNotFound) {
				plan = append(plan, fmt.Sprintf("register agent %q in %s", o.Name, ref))
				return nil
			}
			res.Agent = a
			return err
		}
		a, created, err := env.GitLab.RegisterAgent(ctx, ref, o.Name)
		res.Agent, res.Registered = a, created
		if created {
			env.say("registered agent %q in %s (id %d)", a.Name, ref, a.ID)
		}
		return err
	}); err != nil {
		return res, err
	}

	if !o.NoConfig {
		if err := ph.run("agent config file", func() error {
			committed, change, err := mergeConfig(ctx, env, project, o.Name, o.DryRun)
			res.ConfigCommitted = committed
			if change != "" {
				if o.DryRun {
					plan = append(plan, "commit "+change)
				} else {
					env.say("committed %s", change)
				}
			}
			return err
		}); err != nil {
			return res, err
		}
	}

	// From here a token may be created: undo it on any failure.
	var created *gitlab.NewToken
	defer func() {
		if err != nil && created != nil {
			err = revokeNew(env, ref, res.Agent, created, err, stays(res, in))
		}
	}()

	var token string
	if err := ph.run("token", func() error {
		if res.Agent == nil { // dry run of a new agent
			plan = append(plan, "create a token")
			token = "<new token>"
			return nil
		}
		tok, id, reused, rv, rerr := reuseToken(ctx, env, ref, res.Agent, in)
		if rerr != nil || reused {
			token, res.TokenID = tok, id
			return rerr
		}
		if o.DryRun {
			plan = append(plan, "create a token for agent "+o.Name)
			token = "<new token>"
			return nil
		}
		nt, cerr := (*gitlab.NewToken)(nil), makeRoom(ctx, env, ref, res.Agent, 0, o.Yes)
		if cerr == nil {
			nt, cerr = env.GitLab.CreateToken(ctx, ref, res.Agent, tokenName(), "created by kubectl gitlab-agent install for namespace "+in.Namespace)
		}
		var limit *gitlab.TokenLimitError
		if errors.As(cerr, &limit) {
			// At the limit, another install of this agent may be
			// between creating its token and writing it: use its token
			// once it is in the Secret.
			if tok, id, ok := awaitClaimedToken(ctx, env, ref, res.Agent, in, 3*time.Second); ok {
				env.say("another install of agent %q wrote its token: using token %d", o.Name, id)
				token, res.TokenID = tok, id
				return nil
			}
		}
		if cerr != nil {
			return cerr
		}
		created = nt
		// The token goes into the Secret at once, and only if nobody
		// wrote the Secret since it was read: of installs running at
		// the same time one wins, the others revoke theirs and use its.
		switch err := claimSecret(ctx, env, in, nt, rv); {
		case errors.Is(err, kube.ErrSecretChanged):
			if rerr := revokeCreated(env, ref, res.Agent, nt); rerr != nil {
				return fmt.Errorf("another install wrote the agent's Secret first, and revoking this one's token %d failed (%v): run 'kubectl gitlab-agent token revoke %s %d'", nt.ID, rerr, o.Name, nt.ID)
			}
			created = nil
			tok, id, reused, _, rerr := reuseToken(ctx, env, ref, res.Agent, in)
			if rerr != nil {
				return rerr
			}
			if !reused {
				return fmt.Errorf("the agent's token Secret %s/%s changed while this install ran (another install or rotation?); its own token %d was revoked: run install again", in.Namespace, manifest.SecretName(in), nt.ID)
			}
			env.say("another install of agent %q wrote its token first: revoked this one's token %d, using token %d", o.Name, nt.ID, id)
			token, res.TokenID = tok, id
			return nil
		case err != nil:
			return fmt.Errorf("writing the new token into Secret %s/%s: %w", in.Namespace, manifest.SecretName(in), err)
		}
		token, res.TokenID, res.TokenCreated, res.SecretWritten = created.Secret, created.ID, true, true
		env.say("created token %d for agent %q", created.ID, o.Name)
		return nil
	}); err != nil {
		return res, err
	}

	in.Values.Config.Token = token
	var targets []kube.Target
	var d *diff.Result
	if err := ph.run("diff", func() (err error) {
		targets, d, err = renderAndDiff(ctx, env, in, res.TokenID)
		return err
	}); err != nil {
		return res, err
	}
	if o.DryRun {
		return res, printPlan(o.Out, plan, d, env.NoColor)
	}
	res.ObjectsChanged = changedCount(d)
	res.UpToDate = !res.Registered && !res.ConfigCommitted && !res.TokenCreated && res.ObjectsChanged == 0
	if res.ObjectsChanged > 0 {
		if err := ph.run("apply", func() error {
			return env.Kube.ApplyAll(ctx, targets, kube.FieldManager)
		}); err != nil {
			return res, fmt.Errorf("applying the agent's objects: %w", err)
		}
		env.say("applied %d objects in namespace %s", res.ObjectsChanged, in.Namespace)
	}
	if o.NoWait {
		return res, nil
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := ph.run("rollout", func() error { return waitRollout(wctx, env, in) }); err != nil {
		return res, err
	}
	if err := ph.run("connection", func() error {
		return waitConnected(wctx, env, ref, res.Agent, res.TokenID, ph.start, res.UpToDate, in)
	}); err != nil {
		return res, err
	}
	res.Connected = true
	return res, nil
}

// stays describes what an interrupted install leaves, and how to go on.
func stays(res *InstallResult, in manifest.Input) string {
	var left []string
	if res.Agent != nil {
		left = append(left, fmt.Sprintf("agent %q stays registered", res.Agent.Name))
	}
	if res.ConfigCommitted {
		left = append(left, "its config file stays committed")
	}
	switch {
	case res.ObjectsChanged > 0:
		left = append(left, "the objects applied in namespace "+in.Namespace+" stay")
	case res.SecretWritten:
		left = append(left, "Secret "+in.Namespace+"/"+manifest.SecretName(in)+" stays, holding the revoked token")
	}
	msg := strings.Join(left, ", ")
	if msg == "" {
		msg = "nothing else changed"
	}
	return msg + "; run install again to finish, or uninstall to undo"
}

// revokeNew revokes a token created by an action that then failed.
func revokeNew(env Env, ref gitlab.ProjectRef, a *gitlab.Agent, t *gitlab.NewToken, cause error, left string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rerr := env.GitLab.RevokeToken(ctx, ref, a, t.ID); rerr != nil {
		return fmt.Errorf("%w; revoking the new token %d failed too (%v): run 'kubectl gitlab-agent token revoke %s %d'; %s", cause, t.ID, rerr, a.Name, t.ID, left)
	}
	return fmt.Errorf("%w; the new token %d was revoked; %s", cause, t.ID, left)
}

// tokenName names a token after when and where it was made, with a random
// part unique to the attempt: after a lost answer the token is found by it.
func tokenName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "kubectl-gitlab-agent-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	if host, _ := os.Hostname(); host != "" {
		name += "-" + host
	}
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

// mergeConfig makes sure the agent's config file grants the config project
// CI access and user access (as the agent, unless it already names a mode),
// keeping everything else. It reports whether it committed. When the file
// changed between the read and the commit (another install, a push), it is
// read and merged again.
func mergeConfig(ctx context.Context, env Env, p *gitlab.Project, name string, dryRun bool) (bool, string, error) {
	for attempt := 1; ; attempt++ {
		committed, change, err := mergeConfigOnce(ctx, env, p, name, dryRun)
		if err == nil || attempt == 3 || !gitlab.IsClass(err, gitlab.ClassConflict) {
			return committed, change, err
		}
	}
}

func mergeConfigOnce(ctx context.Context, env Env, p *gitlab.Project, name string, dryRun bool) (bool, string, error) {
	ref := gitlab.ProjectRef{Path: p.PathWithNamespace}
	path := agentconfig.Path(name)
	cfg, prev, err := LoadAgentConfig(ctx, env.GitLab, ref, name, p.DefaultBranch)
	var pe *agentconfig.PositionError
	if errors.As(err, &pe) {
		return false, "", fmt.Errorf("%w (fix the file, or pass --no-config)", err)
	}
	if err != nil {
		return false, "", err
	}
	var done []string
	if ok, err := cfg.AddAccess(agentconfig.CIAccess, agentconfig.Projects, p.PathWithNamespace); err != nil {
		return false, "", err
	} else if ok {
		done = append(done, "ci_access for "+p.PathWithNamespace)
	}
	if ok, err := cfg.AddAccess(agentconfig.UserAccess, agentconfig.Projects, p.PathWithNamespace); err != nil {
		return false, "", err
	} else if ok {
		done = append(done, "user_access for "+p.PathWithNamespace)
	}
	if cfg.AccessAs(agentconfig.UserAccess) == "" {
		if _, err := cfg.SetAccessAs(agentconfig.UserAccess, "agent"); err != nil {
			return false, "", err
		}
		done = append(done, "user_access as the agent")
	}
	if len(done) == 0 {
		return false, "", nil
	}
	change := fmt.Sprintf("%s to %s in %s (%s)", path, p.DefaultBranch, ref, strings.Join(done, ", "))
	if dryRun {
		return false, change, nil
	}
	msg := fmt.Sprintf("Configure agent %s: %s\n\nCommitted by kubectl gitlab-agent install.", name, strings.Join(done, ", "))
	if err := env.GitLab.CommitFile(ctx, ref, p.DefaultBranch, path, cfg.Bytes(), msg, prev); err != nil {
		return false, "", err
	}
	return true, change, nil
}

// LoadAgentConfig reads and parses the agent's config file on branch; an
// absent file is an empty config and a nil previous file (so that a commit
// creates it).
func LoadAgentConfig(ctx context.Context, gl *gitlab.Client, ref gitlab.ProjectRef, name, branch string) (*agentconfig.Config, *gitlab.File, error) {
	path := agentconfig.Path(name)
	prev, found, err := gl.GetFile(ctx, ref, path, branch)
	if err != nil {
		return nil, nil, err
	}
	var src []byte
	if !found {
		prev = nil
	} else {
		src = prev.Content
	}
	cfg, err := agentconfig.Parse(path, src)
	return cfg, prev, err
}

// reuseToken returns the token the cluster's Secret holds when GitLab still
// lists it as active, and the Secret's resourceVersion ("" when there is no
// Secret) for a later claimSecret.
func reuseToken(ctx context.Context, env Env, ref gitlab.ProjectRef, a *gitlab.Agent, in manifest.Input) (token string, id int64, reused bool, rv string, err error) {
	s, err := env.Kube.GetSecret(ctx, in.Namespace, manifest.SecretName(in))
	if err != nil {
		return "", 0, false, "", fmt.Errorf("reading the token Secret: %w", err)
	}
	if s != nil {
		rv = s.ResourceVersion
	}
	id, token = secretToken(s)
	if id == 0 || token == "" {
		return "", 0, false, rv, nil
	}
	active, err := env.GitLab.ListTokens(ctx, ref, a)
	if err != nil {
		return "", 0, false, rv, err
	}
	for _, t := range active {
		if t.ID == id {
			return token, id, true, rv, nil
		}
	}
	return "", 0, false, rv, nil
}

// claimSecret writes the agent's token Secret with the new token t, only if
// the Secret is still as read (rv; "" when there was none): see
// kube.ClaimSecret. A new install's Namespace is applied first.
func claimSecret(ctx context.Context, env Env, in manifest.Input, t *gitlab.NewToken, rv string) error {
	in.Values.Config.Token = t.Secret
	out, err := manifest.Render(in)
	if err != nil {
		return err
	}
	var secret, ns kube.Manifest
	for _, obj := range out.Objects {
		u := &unstructured.Unstructured{Object: obj}
		switch {
		case u.GetKind() == "Secret" && u.GetName() == manifest.SecretName(in):
			annotateTokenID(u, t.ID)
			if secret, err = kube.ManifestOf(u, "render "+in.Name); err != nil {
				return err
			}
		case u.GetKind() == "Namespace" && rv == "":
			if ns, err = kube.ManifestOf(u, "render "+in.Name); err != nil {
				return err
			}
		}
	}
	if secret.Raw == nil {
		return fmt.Errorf("the rendered objects hold no token Secret %s", manifest.SecretName(in))
	}
	if ns.Raw != nil {
		targets, err := env.Kube.MapAll([]kube.Manifest{ns}, in.Namespace)
		if err != nil {
			return err
		}
		if err := env.Kube.ApplyAll(ctx, targets, kube.FieldManager); err != nil {
			return fmt.Errorf("creating namespace %s: %w", in.Namespace, err)
		}
	}
	targets, err := env.Kube.MapAll([]kube.Manifest{secret}, in.Namespace)
	if err != nil {
		return err
	}
	obj, err := targets[0].Object()
	if err != nil {
		return err
	}
	return env.Kube.ClaimSecret(ctx, targets[0], obj, rv, kube.FieldManager)
}

// awaitClaimedToken polls the agent's Secret for up to d for an active token
// that another install wrote.
func awaitClaimedToken(ctx context.Context, env Env, ref gitlab.ProjectRef, a *gitlab.Agent, in manifest.Input, d time.Duration) (string, int64, bool) {
	deadline := time.Now().Add(d)
	for {
		if tok, id, reused, _, err := reuseToken(ctx, env, ref, a, in); err == nil && reused {
			return tok, id, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", 0, false
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// revokeCreated revokes a token this command created and lost a race with.
func revokeCreated(env Env, ref gitlab.ProjectRef, a *gitlab.Agent, t *gitlab.NewToken) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return env.GitLab.RevokeToken(ctx, ref, a, t.ID)
}

// annotateTokenID records on the token Secret which GitLab token it holds.
func annotateTokenID(u *unstructured.Unstructured, id int64) {
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[TokenIDAnnotation] = fmt.Sprint(id)
	u.SetAnnotations(ann)
}

// secretToken reads the token ID annotation and the token of a Secret.
func secretToken(s *corev1.Secret) (int64, string) {
	if s == nil {
		return 0, ""
	}
	var id int64
	fmt.Sscanf(s.Annotations[TokenIDAnnotation], "%d", &id)
	return id, strings.TrimSpace(string(s.Data["token"]))
}

// makeRoom frees a slot at GitLab's two-token limit: with yes it revokes the
// least recently used token other than keep; without, it stops and says which.
func makeRoom(ctx context.Context, env Env, ref gitlab.ProjectRef, a *gitlab.Agent, keep int64, yes bool) error {
	tokens, err := env.GitLab.ListTokensWithLastUse(ctx, ref, a)
	if err != nil || len(tokens) < gitlab.MaxActiveTokens {
		return err
	}
	var victim *gitlab.Token
	for i := len(tokens) - 1; i >= 0; i-- { // least recently used last
		if tokens[i].ID != keep {
			victim = tokens[i]
			break
		}
	}
	if victim == nil {
		return &gitlab.TokenLimitError{Agent: a.Name, Tokens: tokens}
	}
	if !yes {
		return fmt.Errorf("%w; or pass --yes to revoke token %d %q", &gitlab.TokenLimitError{Agent: a.Name, Tokens: tokens}, victim.ID, victim.Name)
	}
	if err := env.GitLab.RevokeToken(ctx, ref, a, victim.ID); err != nil {
		return err
	}
	env.say("revoked token %d %q to stay within GitLab's two-token limit", victim.ID, victim.Name)
	return nil
}

// renderAndDiff renders the agent (its Secret annotated with the token ID)
// and compares it with the cluster.
func renderAndDiff(ctx context.Context, env Env, in manifest.Input, tokenID int64) ([]kube.Target, *diff.Result, error) {
	out, err := manifest.Render(in)
	if err != nil {
		return nil, nil, err
	}
	var ms []kube.Manifest
	for _, obj := range out.Objects {
		u := &unstructured.Unstructured{Object: obj}
		if tokenID != 0 && u.GetKind() == "Secret" && u.GetName() == manifest.SecretName(in) {
			annotateTokenID(u, tokenID)
		}
		m, err := kube.ManifestOf(u, "render "+in.Name)
		if err != nil {
			return nil, nil, err
		}
		ms = append(ms, m)
	}
	targets, err := env.Kube.MapAll(ms, in.Namespace)
	if err != nil {
		return nil, nil, err
	}
	d, err := diff.Run(ctx, env.Kube, ms, diff.Options{Force: true, DefaultNamespace: in.Namespace})
	if err != nil {
		return nil, nil, err
	}
	if d.Failed() {
		for _, obj := range d.Objects {
			if obj.Action == diff.Failed {
				return nil, nil, fmt.Errorf("%s: %s", obj.Ref, obj.Error)
			}
		}
	}
	return targets, d, nil
}

func changedCount(d *diff.Result) int {
	c := d.Counts()
	return c[diff.Created] + c[diff.Changed]
}

func printPlan(w io.Writer, plan []string, d *diff.Result, noColor bool) error {
	var b bytes.Buffer
	if len(plan) == 0 {
		b.WriteString("GitLab: nothing to do\n")
	}
	for _, p := range plan {
		b.WriteString("GitLab: would " + p + "\n")
	}
	fmt.Fprintln(&b, "Cluster: "+diff.PlanLine(d))
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	return diff.WriteUnified(w, io.Discard, d, 3, ui.ColorEnabled(w, noColor))
}

// waitRollout waits for the agent's Deployment, showing progress.
func waitRollout(ctx context.Context, env Env, in manifest.Input) error {
	name := manifest.DeploymentName(in)
	p := ui.NewProgress(env.Log, env.NoColor)
	err := env.Kube.WaitRollout(ctx, in.Namespace, name, func(s kube.RolloutStatus) {
		p.Update("waiting for Deployment %s/%s: %s", in.Namespace, name, safetext.Line(s.String()))
	})
	if err != nil {
		p.Done("")
		return err
	}
	p.Done("Deployment %s/%s is available", in.Namespace, name)
	return nil
}

// recentUse is how recent a token's last use must be for the agent to count
// as connected without waiting for a new use.
const recentUse = 10 * time.Minute

// waitConnected waits until agentk has used token id since since (or, when
// nothing changed, recently).
func waitConnected(ctx context.Context, env Env, ref gitlab.ProjectRef, a *gitlab.Agent, id int64, since time.Time, upToDate bool, in manifest.Input) error {
	p := ui.NewProgress(env.Log, env.NoColor)
	p.Update("waiting for agent %q to connect to KAS with token %d", a.Name, id)
	for {
		t, err := env.GitLab.GetToken(ctx, ref, a, id)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			p.Done("")
			return err
		}
		if t != nil && t.LastUsedAt != nil && (t.LastUsedAt.After(since) || (upToDate && time.Since(*t.LastUsedAt) < recentUse)) {
			p.Done("agent %q is connected (token %d last used %s)", a.Name, id, t.LastUsedAt.UTC().Format(time.RFC3339))
			return nil
		}
		select {
		case <-ctx.Done():
			p.Done("")
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("waiting for agent %q to connect to KAS with token %d: %w", a.Name, id, ctx.Err())
			}
			return fmt.Errorf("agent %q did not connect to KAS in time (token %d unused since the command began): see agentk's errors with 'kubectl logs -n %s deployment/%s', and check that the cluster reaches %s: %w",
				a.Name, id, in.Namespace, manifest.DeploymentName(in), in.Values.Config.KasAddress, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
