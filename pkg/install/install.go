package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// InstallOptions are install's inputs.
type InstallOptions struct {
	Options
	// NoConfig leaves the agent's config file alone.
	NoConfig bool
	// Receptive makes the agent receptive; nil: it dials KAS.
	Receptive *ReceptiveOptions
}

// InstallResult says what install did, or with DryRun would do (Plan).
type InstallResult struct {
	Agent           *gitlab.Agent `json:"agent"`
	Namespace       string        `json:"namespace"`
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
	Plan           *Plan   `json:"plan,omitempty"`
	// HelmRelease is the Helm release whose objects install adopts (or
	// with DryRun would adopt).
	HelmRelease *HelmRelease `json:"helmRelease,omitempty"`
	// URLConfiguration is where KAS dials a receptive agent.
	URLConfiguration        *gitlab.URLConfiguration `json:"urlConfiguration,omitempty"`
	URLConfigurationCreated bool                     `json:"urlConfigurationCreated,omitempty"`
	// Agentk is the agentk version deployed, and why.
	Agentk *AgentVersion `json:"agentk,omitempty"`
}

// installer is one run of Install: its steps share what they found.
type installer struct {
	action
	o     InstallOptions
	res   *InstallResult
	start time.Time
	// in is the render input, completed by the steps.
	in      manifest.Input
	project *gitlab.Project
	ref     gitlab.ProjectRef
	kas     *gitlab.KAS
	// bootstrapping: the run is bootstrap's, which makes the agent Flux's.
	bootstrapping bool
	// created is the token this run created: revoked if the run fails.
	created *gitlab.NewToken
	out     *rendered
}

// Install registers, configures, deploys and connects an agent, in the
// steps installer.steps lists. Re-running it with the same inputs changes
// nothing. If anything fails after a token was created (or ctx is
// cancelled), that token is revoked and the error says what stays.
func Install(ctx context.Context, env Env, o InstallOptions) (*InstallResult, error) {
	i := &installer{action: action{env: env, dryRun: o.DryRun}, o: o, in: o.Input, start: time.Now(),
		res: &InstallResult{Namespace: o.Input.Namespace}}
	err := i.run(ctx)
	i.res.Phases = i.phases
	return i.res, err
}

// steps are what install does before it deploys, in order; each reads
// what the earlier ones found. A new step goes here, as a method of
// installer. A dry run stops after them, with the plan.
func (i *installer) steps() []namedStep {
	steps := []namedStep{
		{"reach the cluster", i.reach},
		{"discover KAS", i.discover},
		{"register agent", i.agent},
	}
	if i.o.Receptive != nil {
		steps = append(steps, namedStep{"URL configuration", i.receptive})
	}
	if !i.o.NoConfig {
		steps = append(steps, namedStep{"agent config file", i.config})
	}
	return append(steps, namedStep{"token", i.token}, namedStep{"diff", i.diff})
}

type namedStep struct {
	name string
	run  func(ctx context.Context) error
}

func (i *installer) run(ctx context.Context) error {
	for _, s := range i.steps() {
		if err := i.step(s.name, func() error { return s.run(ctx) }); err != nil {
			return i.undo(ctx, err)
		}
	}
	if i.planning() {
		i.res.Plan = &Plan{GitLab: i.plan, Cluster: i.out.diff, Server: i.dryRun == DryRunServer, HelmRelease: i.res.HelmRelease, Agentk: i.res.Agentk}
		return nil
	}
	return i.undo(ctx, i.deploy(ctx))
}

// undo revokes the token this run created, after err, and says what stays
// when the run changed anything.
func (i *installer) undo(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if i.created == nil {
		if i.res.Registered || i.res.URLConfigurationCreated || i.res.ConfigCommitted || i.res.ObjectsChanged > 0 || i.res.SecretWritten {
			return fmt.Errorf("%w; %s", err, i.stays())
		}
		return err
	}
	return fmt.Errorf("%w; %s", i.env.GitLab.RevokeCreated(ctx, i.ref, i.res.Agent, i.created, err), i.stays())
}

// stays says what a failed install leaves, and how to go on.
func (i *installer) stays() string {
	var left []string
	if i.res.Agent != nil {
		left = append(left, fmt.Sprintf("agent %q stays registered", i.res.Agent.Name))
	}
	if i.res.URLConfigurationCreated {
		left = append(left, fmt.Sprintf("its URL configuration %d stays", i.res.URLConfiguration.ID))
	}
	if i.res.ConfigCommitted {
		left = append(left, "its config file stays committed")
	}
	switch {
	case i.res.ObjectsChanged > 0:
		left = append(left, "the objects applied in namespace "+i.in.Namespace+" stay")
	case i.res.SecretWritten:
		left = append(left, "Secret "+i.in.Namespace+"/"+manifest.SecretName(i.in)+" stays, holding the revoked token")
	}
	msg := strings.Join(left, ", ")
	if msg == "" {
		msg = "nothing else changed"
	}
	if i.bootstrapping {
		// install refuses an agent Flux applies: bootstrap finishes it.
		return msg + "; run bootstrap again to finish, or uninstall to undo"
	}
	return msg + "; run install again to finish, or uninstall to undo"
}

// reach checks the cluster first: an install that cannot reach it must not
// have registered an agent or created a token on the way.
func (i *installer) reach(ctx context.Context) error {
	if err := i.env.Cluster.Reachable(ctx); err != nil {
		return fmt.Errorf("%w; nothing was changed in GitLab", err)
	}
	if i.bootstrapping {
		return nil
	}
	// An agent Flux applies from git is bootstrap's to change.
	return i.refuseFluxManaged(ctx, i.o.Name, i.in, "install")
}

// discover finds KAS and the project; KAS's address and version fill what
// the user did not choose. An agent config file KAS refuses stops the
// install here, before anything changes.
func (i *installer) discover(ctx context.Context) error {
	var err error
	if i.kas, err = i.env.GitLab.DiscoverKAS(ctx); err != nil {
		return err
	}
	if i.project, err = i.env.GitLab.GetProject(ctx, i.o.Project); err != nil {
		return err
	}
	i.ref = gitlab.ProjectRef{Path: i.project.PathWithNamespace}
	if err := i.refuseStaleConfig(ctx); err != nil {
		return err
	}
	if !i.in.Set.Has(manifest.KeyKasAddress) {
		i.in.Values.Config.KasAddress = i.kas.AgentURL
	}
	v := chooseVersion(&i.in, i.kas)
	i.res.Agentk = &v
	if !i.planning() {
		i.say(v.Line())
	}
	return nil
}

// agent finds or registers the agent.
func (i *installer) agent(ctx context.Context) error {
	if i.planning() {
		a, err := i.env.GitLab.FindAgent(ctx, i.ref, gitlab.AgentRef{Name: i.o.Name})
		if gitlab.IsClass(err, gitlab.ClassNotFound) {
			i.plan = append(i.plan, fmt.Sprintf("register agent %q in %s", i.o.Name, i.ref))
			return nil
		}
		i.res.Agent = a
		return err
	}
	a, created, err := i.env.GitLab.RegisterAgent(ctx, i.ref, i.o.Name)
	i.res.Agent, i.res.Registered = a, created
	if created {
		i.say(fmt.Sprintf("registered agent %q in %s (id %d)", a.Name, i.ref, a.ID))
	}
	return err
}

// config merges the project's access into the agent's config file.
func (i *installer) config(ctx context.Context) error {
	c, err := i.mergeConfig(ctx, i.project, i.o.Name, i.planning())
	i.res.ConfigCommitted = c.committed
	switch {
	case c.what == "":
	case i.planning():
		i.plan = append(i.plan, "commit "+c.what)
	default:
		i.say("committed " + c.what)
	}
	return err
}

// token reuses the token the cluster's Secret holds while GitLab lists it
// as active; else it creates one and writes it into the Secret at once.
func (i *installer) token(ctx context.Context) error {
	if i.res.Agent == nil { // a dry run for a new agent
		i.plan = append(i.plan, "create a token")
		i.in.Values.Config.Token = "<new token>"
		return nil
	}
	h, err := i.heldToken(ctx, i.ref, i.res.Agent, i.in)
	if err != nil {
		return err
	}
	if h.active {
		i.use(h)
		return nil
	}
	if i.planning() {
		i.plan = append(i.plan, "create a token for agent "+i.o.Name)
		i.in.Values.Config.Token = "<new token>"
		return nil
	}
	nt, err := i.createToken(ctx)
	if err != nil || nt == nil {
		return err
	}
	i.created = nt
	// Only if nobody wrote the Secret since it was read: of installs
	// running at the same time one wins, the others revoke theirs and use
	// its token.
	switch err := i.claimSecret(ctx, i.in, nt, h.rv); {
	case errors.Is(err, kube.ErrSecretChanged):
		return i.yieldToOther(ctx, nt)
	case err != nil:
		return fmt.Errorf("writing the new token into Secret %s/%s: %w", i.in.Namespace, manifest.SecretName(i.in), err)
	}
	i.in.Values.Config.Token = nt.Secret
	i.res.TokenID, i.res.TokenCreated, i.res.SecretWritten = nt.ID, true, true
	i.say(fmt.Sprintf("created token %d for agent %q", nt.ID, i.o.Name))
	return nil
}

func (i *installer) use(h held) {
	i.in.Values.Config.Token, i.res.TokenID = h.token, h.id
}

// createToken creates the agent's token, making room at the two-token limit
// when allowed. At the limit another install of this agent may be between
// creating its token and writing it: its token is used once it is in the
// Secret (and then nil, nil is returned).
func (i *installer) createToken(ctx context.Context) (*gitlab.NewToken, error) {
	err := i.makeRoom(ctx, i.ref, i.res.Agent, 0, i.o.Yes)
	var nt *gitlab.NewToken
	if err == nil {
		nt, err = i.env.GitLab.CreateToken(ctx, i.ref, i.res.Agent, tokenName(), "created by kubectl gitlab-agent install for namespace "+i.in.Namespace)
	}
	var limit *gitlab.TokenLimitError
	if errors.As(err, &limit) {
		if h, ok := i.awaitClaimedToken(ctx, i.ref, i.res.Agent, i.in, 15*i.poll(200*time.Millisecond)); ok {
			i.say(fmt.Sprintf("another install of agent %q wrote its token: using token %d", i.o.Name, h.id))
			i.use(h)
			return nil, nil
		}
	}
	return nt, err
}

// yieldToOther handles a lost race for the Secret: this run's token is
// revoked and the winner's is used.
func (i *installer) yieldToOther(ctx context.Context, nt *gitlab.NewToken) error {
	i.created = nil
	var revoked *gitlab.CreatedTokenError
	err := i.env.GitLab.RevokeCreated(ctx, i.ref, i.res.Agent, nt, errors.New("another install wrote the agent's Secret first"))
	if errors.As(err, &revoked) && !revoked.Revoked() {
		return err
	}
	h, err := i.heldToken(ctx, i.ref, i.res.Agent, i.in)
	if err != nil {
		return err
	}
	if !h.active {
		return fmt.Errorf("the agent's token Secret %s/%s changed while this install ran (another install or rotation?); its own token %d was revoked: run install again", i.in.Namespace, manifest.SecretName(i.in), nt.ID)
	}
	i.say(fmt.Sprintf("another install of agent %q wrote its token first: revoked this one's token %d, using token %d", i.o.Name, nt.ID, h.id))
	i.use(h)
	return nil
}

// diff renders the agent with its token and compares it with the cluster,
// where a Helm release's objects may be to adopt.
func (i *installer) diff(ctx context.Context) (err error) {
	if i.res.HelmRelease, err = i.helmRelease(ctx, i.in); err != nil {
		return err
	}
	i.out, err = i.render(ctx, i.in, i.res.TokenID)
	return err
}

// deploy applies what changed and waits for the rollout and the connection.
func (i *installer) deploy(ctx context.Context) error {
	i.res.ObjectsChanged = i.out.changed()
	i.res.UpToDate = !i.res.Registered && !i.res.URLConfigurationCreated && !i.res.ConfigCommitted && !i.res.TokenCreated && i.res.ObjectsChanged == 0
	conn := &connection{ref: i.ref, agent: i.res.Agent, tokenID: i.res.TokenID, created: i.res.TokenCreated, since: i.start, upToDate: i.res.UpToDate}
	if !i.o.NoWait && !conn.created && !conn.upToDate {
		conn.lastUseBefore(ctx, i.env.GitLab)
	}
	if i.res.ObjectsChanged > 0 {
		if i.res.HelmRelease != nil {
			i.say(i.res.HelmRelease.String())
		}
		if err := i.apply(ctx, i.out); err != nil {
			return err
		}
		if i.res.HelmRelease != nil {
			i.takeOverFromHelm(ctx, i.out)
		}
	}
	if i.o.NoWait {
		return nil
	}
	if err := i.awaitReady(ctx, i.in, i.o.Timeout, conn); err != nil {
		return err
	}
	i.res.Connected = true
	return nil
}
