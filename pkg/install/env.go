// Package install runs the agent's lifecycle against GitLab and a cluster:
// install, upgrade, uninstall, token rotation and status. Each action takes
// an Env and plain options and returns a result; pkg/cmd maps flags onto the
// options and prints the results. Nothing here writes to a terminal.
package install

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// Cluster is what the actions need from a cluster: what a diff needs (the
// plan is diff.Run on it), and more. NewCluster is the real client;
// pkg/kube/fake is an in-memory one for tests.
type Cluster interface {
	diff.Cluster
	// GetSecret and GetDeployment return nil, nil when there is none.
	GetSecret(ctx context.Context, ns, name string) (*corev1.Secret, error)
	GetDeployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error)
	FindDeployments(ctx context.Context, selector string) ([]*appsv1.Deployment, error)
	// GetConfigMap returns nil, nil when there is none.
	GetConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error)
	MapAll(ms []kube.Manifest, defaultNS string) ([]kube.Target, error)
	// ApplyAll server-side applies the targets in order, forcing conflicts.
	ApplyAll(ctx context.Context, targets []kube.Target, manager string) error
	// ClaimSecret writes the Secret only if it is as read (readRV "": absent);
	// a lost race is kube.ErrSecretChanged.
	ClaimSecret(ctx context.Context, t kube.Target, o *unstructured.Unstructured, readRV, manager string) error
	WaitRollout(ctx context.Context, ns, name string, progress func(kube.RolloutStatus)) error
	// SelectedObjects lists the objects of kinds (nil: every kind) that
	// selector matches: namespaced ones in namespaces only.
	SelectedObjects(ctx context.Context, selector string, namespaces, kinds []string) ([]*unstructured.Unstructured, error)
	DeleteAndWait(ctx context.Context, objs []*unstructured.Unstructured) error
	// DeleteDryRun asks the server to delete each object as a dry run
	// (admission and RBAC answer; nothing is deleted).
	DeleteDryRun(ctx context.Context, objs []*unstructured.Unstructured) error
	// TakeOver makes manager the only owner of the fields it applied that
	// manager from shares (kube.TakeOverFields).
	TakeOver(ctx context.Context, t kube.Target, from, manager string) error
}

// NewCluster is the real cluster behind c.
func NewCluster(c *kube.Client) Cluster { return c }

// Reporter hears what an action does while it runs; pkg/cmd prints it.
type Reporter interface {
	// Step says what was just done.
	Step(msg string)
	// Waiting says what the action waits for; each call replaces the
	// last, and the next Step ends the wait.
	Waiting(msg string)
	// Phase says how long a step took.
	Phase(p Phase)
}

// Phase is one timed step of an action.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
}

// Env is what the actions work with.
type Env struct {
	// GitLab may be nil for the actions that can do without it (upgrade,
	// uninstall without GitLab changes).
	GitLab  *gitlab.Client
	Cluster Cluster
	// Flux reaches Flux's objects (bootstrap, and uninstall of a
	// bootstrapped agent); nil where no action needs it.
	Flux flux.Cluster
	// Report hears progress; nil hears nothing.
	Report Reporter
	// Poll is how often waits on GitLab look again (default 1s).
	Poll time.Duration
}

// TokenIDAnnotation on the token Secret names the GitLab token it holds, so
// that a later install can tell whether GitLab still accepts it.
const TokenIDAnnotation = "kubectl-gitlab-agent/token-id"

// Options are the inputs every lifecycle action shares.
type Options struct {
	Name    string
	Project gitlab.ProjectRef
	// Input is the render input (values, namespace). Values the user did
	// not set (Input.Set) come from GitLab (install) or from the running
	// agent (upgrade, rotate): the KAS address and agentk's version.
	Input manifest.Input
	// Yes allows revoking a token at GitLab's two-token limit, and
	// deleting without asking.
	Yes bool
	// DryRun plans instead of acting: GitLab is read, never changed.
	DryRun DryRun
	NoWait bool
	// Timeout bounds the wait for the rollout and the connection.
	Timeout time.Duration
}

// DryRun is kubectl's --dry-run strategy (kubectl's cmdutil.DryRunStrategy).
// GitLab has no dry run: under either strategy the GitLab side is read and
// planned, never changed.
type DryRun string

// The strategies, as --dry-run names them.
const (
	// DryRunNone acts.
	DryRunNone DryRun = ""
	// DryRunClient plans: what GitLab would see done, and the cluster's
	// diff (which asks the server's dry run only what it cannot predict).
	DryRunClient DryRun = "client"
	// DryRunServer plans as DryRunClient does, with every object applied
	// (or deleted) as a server-side dry run: admission, webhooks and RBAC
	// answer for each, and nothing is stored.
	DryRunServer DryRun = "server"
)

// action is what every lifecycle action carries: its Env, the steps it
// timed and, in a dry run, what it would do in GitLab.
type action struct {
	env    Env
	phases []Phase
	dryRun DryRun
	plan   []string
}

// planning says whether the action is a dry run.
func (a *action) planning() bool { return a.dryRun != DryRunNone }

// step runs fn as the named phase.
func (a *action) step(name string, fn func() error) error {
	t := time.Now()
	err := fn()
	p := Phase{Name: name, Duration: time.Since(t)}
	a.phases = append(a.phases, p)
	if a.env.Report != nil {
		a.env.Report.Phase(p)
	}
	return err
}

func (a *action) say(msg string) {
	if a.env.Report != nil {
		a.env.Report.Step(msg)
	}
}

func (a *action) waiting(msg string) {
	if a.env.Report != nil {
		a.env.Report.Waiting(msg)
	}
}

// poll is the interval of waits on GitLab, def unless Env.Poll says.
func (a *action) poll(def time.Duration) time.Duration {
	if a.env.Poll > 0 {
		return a.env.Poll
	}
	return def
}

// sleep waits d or until ctx ends; it reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
