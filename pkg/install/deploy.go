package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/distribution/reference"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// Plan is what a dry run would do: the GitLab changes in words, and the
// cluster's as a diff.
type Plan struct {
	GitLab  []string
	Cluster *diff.Result
	// Remove are the objects of ours an upgrade would remove after its
	// rollout (the new render no longer has them).
	Remove []string
	// Server: the cluster's part is the server's dry run of every object
	// (DryRunServer), none of it predicted here.
	Server bool `json:"-"`
	// HelmRelease is the Helm release whose objects install would adopt.
	HelmRelease *HelmRelease
	// Agentk is the agentk version the objects would run, and why, for
	// the text; the action's result has it for -o json|yaml.
	Agentk *AgentVersion
}

// MarshalJSON writes the plan for -o json|yaml: the cluster's part as diff's
// document.
func (p Plan) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		GitLab      []string      `json:"gitlab"`
		Cluster     diff.Document `json:"cluster"`
		Remove      []string      `json:"remove,omitempty"`
		HelmRelease *HelmRelease  `json:"helmRelease,omitempty"`
	}{append([]string{}, p.GitLab...), diff.JSON(p.Cluster), p.Remove, p.HelmRelease})
}

// rendered is the agent rendered for a cluster, and what applying it would
// change there.
type rendered struct {
	in      manifest.Input
	targets []kube.Target
	diff    *diff.Result
}

// changed counts the objects an apply would create or change.
func (r *rendered) changed() int {
	c := r.diff.Counts()
	return c[diff.Created] + c[diff.Changed]
}

// render renders the agent (its Secret annotated with tokenID when known)
// and compares it with the cluster; an object the cluster would refuse is
// an error.
func (a *action) render(ctx context.Context, in manifest.Input, tokenID int64) (*rendered, error) {
	if err := a.keepPrivateJWT(ctx, &in); err != nil {
		return nil, err
	}
	out, err := renderAnnotated(in, tokenID)
	if err != nil {
		return nil, err
	}
	ms, err := kube.FromObjects(out.Objects, "render "+in.Name)
	if err != nil {
		return nil, err
	}
	targets, err := a.env.Cluster.MapAll(ms, in.Namespace)
	if err != nil {
		return nil, err
	}
	// A server dry run sends every object to the server, as the apply
	// would: admission and RBAC answer for each.
	d, err := diff.Run(ctx, a.env.Cluster, ms, diff.Options{Force: true, DefaultNamespace: in.Namespace, ServerOnly: a.dryRun == DryRunServer})
	var ie *diff.InterruptedError
	if errors.As(err, &ie) {
		// How many objects the comparison reached is diff's news; the
		// action says what it left itself.
		return nil, ie.Err
	}
	if err != nil {
		return nil, err
	}
	for _, obj := range d.Objects {
		if obj.Action == diff.Failed {
			return nil, fmt.Errorf("%s: %s", obj.Ref, obj.Error)
		}
	}
	return &rendered{in: in, targets: targets, diff: d}, nil
}

// apply applies what render found changed.
func (a *action) apply(ctx context.Context, r *rendered) error {
	if err := a.step("apply", func() error {
		return a.env.Cluster.ApplyAll(ctx, r.targets, kube.FieldManager)
	}); err != nil {
		return fmt.Errorf("applying the agent's objects: %w", err)
	}
	a.say(fmt.Sprintf("applied %d objects in namespace %s", r.changed(), r.in.Namespace))
	return nil
}

// connection is what waitConnected waits for: agentk using token id of
// agent ag since since (or, when nothing changed, recently).
type connection struct {
	ref     gitlab.ProjectRef
	agent   *gitlab.Agent
	tokenID int64
	// created: this run made the token, so any use is agentk's with it.
	// Else a use counts when GitLab stamped it after since (this machine's
	// clock) or, upToDate, within recentUse.
	created  bool
	since    time.Time
	upToDate bool
	// seen: before is the token's last use as GitLab said before the
	// apply (nil: none); a use GitLab stamps after it counts, GitLab's
	// clock compared with itself.
	seen   bool
	before *time.Time
}

// lastUseBefore notes the token's last use as GitLab has it now, before
// the apply (best effort: without it, this machine's clock is compared).
func (c *connection) lastUseBefore(ctx context.Context, g *gitlab.Client) {
	if t, err := g.GetToken(ctx, c.ref, c.agent, c.tokenID); err == nil {
		c.seen, c.before = true, t.LastUsedAt
	}
}

// usedSince says whether the token's use t proves agentk connected with it.
func (c *connection) usedSince(t *gitlab.Token) bool {
	switch {
	case t == nil || t.LastUsedAt == nil:
		return false
	case c.created: // a token this run made was never used before
		return true
	case c.seen && (c.before == nil || t.LastUsedAt.After(*c.before)):
		return true
	}
	return t.LastUsedAt.After(c.since) || (c.upToDate && time.Since(*t.LastUsedAt) < recentUse)
}

// awaitReady waits, within timeout, for the Deployment's rollout and then,
// when conn is set, for agentk's connection.
func (a *action) awaitReady(ctx context.Context, in manifest.Input, timeout time.Duration, conn *connection) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := a.step("rollout", func() error { return a.waitRollout(wctx, in) }); err != nil {
		return err
	}
	if conn == nil {
		return nil
	}
	return a.step("connection", func() error { return a.waitConnected(wctx, in, *conn) })
}

// waitRollout waits for the agent's Deployment.
func (a *action) waitRollout(ctx context.Context, in manifest.Input) error {
	name := manifest.DeploymentName(in)
	err := a.env.Cluster.WaitRollout(ctx, in.Namespace, name, func(s kube.RolloutStatus) {
		a.waiting(fmt.Sprintf("waiting for Deployment %s/%s: %s", in.Namespace, name, s))
	})
	if err != nil {
		return err
	}
	a.say(fmt.Sprintf("Deployment %s/%s is available", in.Namespace, name))
	return nil
}

// recentUse is how recent a token's last use must be for the agent to count
// as connected without waiting for a new use.
const recentUse = 10 * time.Minute

// waitConnected waits until agentk has used the token as c says.
func (a *action) waitConnected(ctx context.Context, in manifest.Input, c connection) error {
	a.waiting(fmt.Sprintf("waiting for agent %q to connect to KAS with token %d", c.agent.Name, c.tokenID))
	for {
		t, err := a.env.GitLab.GetToken(ctx, c.ref, c.agent, c.tokenID)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if c.usedSince(t) {
			a.say(fmt.Sprintf("agent %q is connected (token %d last used %s)", c.agent.Name, c.tokenID, t.LastUsedAt.UTC().Format(time.RFC3339)))
			return nil
		}
		if !sleep(ctx, a.poll(time.Second)) {
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("waiting for agent %q to connect to KAS with token %d: %w", c.agent.Name, c.tokenID, ctx.Err())
			}
			return fmt.Errorf("agent %q did not connect to KAS in time (token %d unused since the command began): see agentk's errors with 'kubectl logs -n %s deployment/%s', and check that the cluster reaches %s: %w",
				c.agent.Name, c.tokenID, in.Namespace, manifest.DeploymentName(in), in.Values.Config.KasAddress, ctx.Err())
		}
	}
}

// Running is what the agent's Deployment runs: agentk's image, its version
// (the image tag), the KAS address it dials, the CA file and headers it is
// given for KAS, and the file its token is read from.
type Running struct {
	Image      string
	Version    string
	KasAddress string
	// KasCAFile is --kas-ca-cert-file ("" none); KasCA is that file's
	// content when it was read (ReadRunning).
	KasCAFile string
	KasCA     string
	// KasHeaders are the --kas-header values, in order.
	KasHeaders []string
	TokenFile  string
	// Receptive: agentk serves the API KAS dials (--private-api-jwt-file);
	// APIJWTFile is its --api-jwt-file ("" none).
	Receptive  bool
	APIJWTFile string
	// Container is agentk's container (nil: the Deployment has none).
	Container *corev1.Container
	// Replicas is the Deployment's replicas, Pod its pod template's spec.
	Replicas *int32
	Pod      *corev1.PodSpec
	// Chart is the chart version whose layout it follows ("" not known).
	Chart string
}

// RunningOf reads the agentk container of d.
func RunningOf(d *appsv1.Deployment) Running {
	var r Running
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name != manifest.ChartName {
			continue
		}
		r.Container = &d.Spec.Template.Spec.Containers[i]
		r.Image, r.Version = c.Image, ImageTag(c.Image)
		for j := 0; j < len(c.Args); j++ {
			arg := c.Args[j]
			if k, v, ok := strings.Cut(arg, "="); ok {
				switch k {
				case "--kas-address":
					r.KasAddress = v
				case "--kas-ca-cert-file":
					r.KasCAFile = v
				case "--token-file":
					r.TokenFile = v
				case "--kas-header":
					r.KasHeaders = append(r.KasHeaders, v)
				case "--private-api-jwt-file":
					r.Receptive = true
				case "--api-jwt-file":
					r.APIJWTFile = v
				}
			} else if arg == "--kas-header" && j+1 < len(c.Args) {
				j++
				r.KasHeaders = append(r.KasHeaders, c.Args[j])
			}
		}
	}
	r.Replicas, r.Pod = d.Spec.Replicas, &d.Spec.Template.Spec
	r.Chart = runningChart(d, r)
	return r
}

// VolumeAt is the volume of d mounted in agentk's container at the
// directory of file (nil none).
func (r Running) VolumeAt(d *appsv1.Deployment, file string) *corev1.Volume {
	if file == "" || r.Container == nil {
		return nil
	}
	dir := path.Dir(file)
	for _, m := range r.Container.VolumeMounts {
		if path.Clean(m.MountPath) != dir {
			continue
		}
		for i, vol := range d.Spec.Template.Spec.Volumes {
			if vol.Name == m.Name {
				return &d.Spec.Template.Spec.Volumes[i]
			}
		}
	}
	return nil
}

// ConfigMapReader reads a ConfigMap; nil, nil when there is none.
type ConfigMapReader interface {
	GetConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error)
}

// ReadRunning is RunningOf with the CA agentk is given for KAS read from
// the ConfigMap mounted where --kas-ca-cert-file points (the chart's
// config.kasCaCert).
func ReadRunning(ctx context.Context, c ConfigMapReader, d *appsv1.Deployment) (Running, error) {
	r := RunningOf(d)
	if r.KasCAFile == "" {
		return r, nil
	}
	vol := r.VolumeAt(d, r.KasCAFile)
	if vol == nil || vol.ConfigMap == nil {
		return r, fmt.Errorf("agentk is given the CA %s, which no ConfigMap volume provides", r.KasCAFile)
	}
	key := path.Base(r.KasCAFile)
	cm, err := c.GetConfigMap(ctx, d.Namespace, vol.ConfigMap.Name)
	if err != nil {
		return r, fmt.Errorf("reading the CA agentk is given: %w", err)
	}
	if cm == nil || cm.Data[key] == "" {
		return r, fmt.Errorf("agentk is given the CA %s, but ConfigMap %s/%s has no %s", r.KasCAFile, d.Namespace, vol.ConfigMap.Name, key)
	}
	r.KasCA = cm.Data[key]
	return r, nil
}

// ImageTag is the tag of an image reference ("" when it has none): a
// registry port ("registry:5000/agentk") is no tag, and a digest is not
// either.
func ImageTag(image string) string {
	ref, err := reference.Parse(image)
	if err != nil {
		return ""
	}
	if t, ok := ref.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// TagValue is the image.tag that makes the chart render image again: its
// tag, with its digest when it pins one (the chart writes
// repository:tag, and a pin is written tag@sha256:...); "" when image has
// no tag.
func TagValue(image string) string {
	ref, err := reference.Parse(image)
	if err != nil {
		return ""
	}
	t, ok := ref.(reference.Tagged)
	if !ok {
		return ""
	}
	if d, ok := ref.(reference.Digested); ok {
		return t.Tag() + "@" + d.Digest().String()
	}
	return t.Tag()
}

// keepPrivateJWT gives a receptive agent the private-api-jwt its Secret
// holds, as the chart's lookup does, so that an upgrade does not change it
// under the running replicas.
func (a *action) keepPrivateJWT(ctx context.Context, in *manifest.Input) error {
	if !in.Values.Config.Receptive.Enabled || in.PrivateAPIJWT != "" {
		return nil
	}
	s, err := a.env.Cluster.GetSecret(ctx, in.Namespace, manifest.SecretName(*in))
	if err != nil {
		return fmt.Errorf("reading the agent's Secret for its private-api-jwt: %w", err)
	}
	in.PrivateAPIJWT = manifest.KeptPrivateAPIJWT(s)
	return nil
}

// renderAnnotated renders in, its token Secret annotated with tokenID when
// known (0: not).
func renderAnnotated(in manifest.Input, tokenID int64) (manifest.Output, error) {
	out, err := manifest.Render(in)
	if err != nil || tokenID == 0 {
		return out, err
	}
	for _, obj := range out.Objects {
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "Secret" && u.GetName() == manifest.SecretName(in) {
			annotateTokenID(u, tokenID)
		}
	}
	return out, nil
}
