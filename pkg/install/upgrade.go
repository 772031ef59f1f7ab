package install

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// installed is the agent as it runs in the cluster.
type installed struct {
	Running
	tokenID int64
	token   string
	// secretRV is the token Secret's resourceVersion as read.
	secretRV string
	// apiJWT is a receptive agent's GitLab key, as its Secret holds it.
	apiJWT string
}

// current reads the installed agent: its Deployment (for the KAS address and
// agentk version it runs with) and its token Secret. A cluster that does not
// answer is said first, in one line, as install says it.
func (a *action) current(ctx context.Context, in manifest.Input) (*installed, error) {
	if err := a.env.Cluster.Reachable(ctx); err != nil {
		return nil, err
	}
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
	run, err := readRunning(ctx, a.env.Cluster, d, in)
	if err != nil {
		return nil, err
	}
	cur := &installed{Running: run, secretRV: s.ResourceVersion, apiJWT: apiJWTOf(s)}
	cur.tokenID, cur.token = secretToken(s)
	if cur.token == "" {
		return nil, fmt.Errorf("the Secret %s/%s holds no token: run install to create one", in.Namespace, s.Name)
	}
	return cur, nil
}

// ValueNeededError is a value the action cannot carry over from the running
// agent: the user must give it. Key is its values key, What says what it is
// to agentk ("its CA").
type ValueNeededError struct {
	Key, What string
	Err       error
}

func (e *ValueNeededError) Error() string {
	return fmt.Sprintf("%v: give agentk %s (the value %s)", e.Err, e.What, e.Key)
}
func (e *ValueNeededError) Unwrap() error { return e.Err }

// readRunning is ReadRunning for a render of in: a CA that cannot be read
// matters only when the user gives none (a *ValueNeededError).
func readRunning(ctx context.Context, c ConfigMapReader, d *appsv1.Deployment, in manifest.Input) (Running, error) {
	run, err := ReadRunning(ctx, c, d)
	if err != nil && !in.Set.Has(manifest.KeyKasCaCert) {
		return run, &ValueNeededError{Key: manifest.KeyKasCaCert, What: "its CA", Err: err}
	}
	return run, nil
}

// withCurrent is the render input with what the user did not set taken
// from the running agent (how it reaches KAS: the address, and for the same
// KAS host the CA and the headers; agentk's version; the values Carried),
// and token in the Secret.
func (o Options) withCurrent(cur *installed, token string) manifest.Input {
	in := o.Input
	cur.carry(&in)
	if !in.Set.Has(manifest.KeyKasAddress) && cur.KasAddress != "" {
		in.Values.Config.KasAddress = cur.KasAddress
	}
	if sameKASHost(in.Values.Config.KasAddress, cur.KasAddress) {
		if !in.Set.Has(manifest.KeyKasCaCert) && cur.KasCA != "" {
			in.Values.Config.KasCaCert = cur.KasCA
		}
		if !in.Set.Has(manifest.KeyKasHeaders) && len(cur.KasHeaders) > 0 {
			in.Values.Config.KasHeaders = append([]string(nil), cur.KasHeaders...)
		}
	}
	if tag := TagValue(cur.Image); !in.Set.Has(manifest.KeyImageTag) && tag != "" {
		in.Values.Image.Tag = tag // a digest pin stays
	}
	keepReceptive(&in, cur)
	in.Values.Config.Token = token
	return in
}

// notCarried names what withCurrent leaves behind because the user moves
// the agent to another KAS host: the CA and the headers it is given for
// the old one (headers may hold a proxy's credential).
func (o Options) notCarried(cur *installed) []string {
	in := o.Input
	if !in.Set.Has(manifest.KeyKasAddress) || sameKASHost(in.Values.Config.KasAddress, cur.KasAddress) {
		return nil
	}
	var out []string
	if !in.Set.Has(manifest.KeyKasCaCert) && cur.KasCA != "" {
		out = append(out, manifest.KeyKasCaCert)
	}
	if !in.Set.Has(manifest.KeyKasHeaders) && len(cur.KasHeaders) > 0 {
		out = append(out, manifest.KeyKasHeaders)
	}
	return out
}

// sameKASHost says whether two KAS addresses dial the same host and port.
func sameKASHost(a, b string) bool {
	hostPort := func(addr string) string {
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			return gitlab.HostPort(u)
		}
		return strings.ToLower(addr)
	}
	return hostPort(a) == hostPort(b)
}

// UpgradeResult says what upgrade did, or with DryRun would do (Plan).
type UpgradeResult struct {
	Namespace      string `json:"namespace"`
	ObjectsChanged int    `json:"objectsChanged"`
	UpToDate       bool   `json:"upToDate"`
	// Removed are the objects of ours the new render no longer has (a
	// layout change, a feature turned off).
	Removed []string `json:"removed,omitempty"`
	Phases  []Phase  `json:"phases"`
	Plan    *Plan    `json:"plan,omitempty"`
	// Agentk is the agentk version it runs now (or, in a dry run, would),
	// and why.
	Agentk *AgentVersion `json:"agentk,omitempty"`
}

// Upgrade re-renders the installed agent with new values or agentk version
// (the rest as it runs now, token included), applies and waits for the
// rollout. Unless the user sets agentk's version, it moves to KAS's when
// env.GitLab answers and names the KAS the agent dials; without GitLab
// (env.GitLab nil) the version stays, and the rest works all the same.
func Upgrade(ctx context.Context, env Env, o Options) (*UpgradeResult, error) {
	a := &action{env: env, dryRun: o.DryRun}
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
	if err := a.refuseFluxManaged(ctx, o.Name, o.Input, "upgrade"); err != nil {
		return res, err
	}
	in := o.withCurrent(cur, cur.token)
	if left := o.notCarried(cur); len(left) > 0 {
		a.say(fmt.Sprintf("the new KAS host %s does not get what agentk was given for %s (%s): set them again if it needs them",
			in.Values.Config.KasAddress, cur.KasAddress, strings.Join(left, ", ")))
	}
	v := a.upgradeVersion(ctx, &in, cur)
	res.Agentk = &v
	if !a.planning() {
		a.say(v.Line())
	}
	var r *rendered
	if err := a.step("diff", func() (err error) {
		r, err = a.render(ctx, in, cur.tokenID)
		return err
	}); err != nil {
		return res, err
	}
	// What the old layout had and the new has not, when it carries our
	// labels, goes once the new objects serve (with NoWait: once applied).
	// With nothing to apply it is looked for all the same: an earlier
	// upgrade that stopped before removing it left it behind.
	if a.planning() {
		stale, names, err := a.findStale(ctx, r)
		if err != nil {
			return res, err
		}
		if err := a.deleteDryRun(ctx, stale); err != nil {
			return res, fmt.Errorf("removing %s, which the new layout no longer has: %w", strings.Join(names, ", "), err)
		}
		res.Plan = &Plan{Cluster: r.diff, Server: a.dryRun == DryRunServer, Agentk: res.Agentk}
		if len(stale) > 0 {
			res.Plan.Remove = names
		}
		return res, nil
	}
	var stale []*unstructured.Unstructured
	var names []string
	res.ObjectsChanged = r.changed()
	if res.ObjectsChanged == 0 {
		if stale, names, err = a.findStale(ctx, r); err != nil || len(stale) == 0 {
			res.UpToDate = err == nil
			return res, err
		}
	} else if err := a.apply(ctx, r); err != nil {
		return res, err
	}
	if !o.NoWait {
		if err := a.awaitReady(ctx, in, o.Timeout, nil); err != nil {
			return res, err
		}
	}
	if res.ObjectsChanged > 0 { // as the cluster has them once applied
		if stale, names, err = a.findStale(ctx, r); err != nil {
			return res, err
		}
	}
	res.Removed, err = a.removeStale(ctx, stale, names)
	return res, err
}

// removeStale deletes stale, the install's objects that the new render no
// longer has (findStale): those with its selector labels and our
// managed-by label (an object Helm or someone else labelled stays), of a
// kind the chart makes, never the token Secret.
func (a *action) removeStale(ctx context.Context, stale []*unstructured.Unstructured, names []string) ([]string, error) {
	if len(stale) == 0 {
		return nil, nil
	}
	if err := a.step("remove", func() error { return a.env.Cluster.DeleteAndWait(ctx, stale) }); err != nil {
		return nil, fmt.Errorf("removing %s, which the new layout no longer has: %w", strings.Join(names, ", "), err)
	}
	a.say("removed " + strings.Join(names, ", ") + ": the new layout no longer has them")
	return names, nil
}

// deleteDryRun asks the server to dry-run the deletion of objs, in a
// server dry run; a client dry run asks nothing.
func (a *action) deleteDryRun(ctx context.Context, objs []*unstructured.Unstructured) error {
	if a.dryRun != DryRunServer || len(objs) == 0 {
		return nil
	}
	return a.env.Cluster.DeleteDryRun(ctx, objs)
}

// findStale finds what removeStale removes, and names it.
func (a *action) findStale(ctx context.Context, r *rendered) ([]*unstructured.Unstructured, []string, error) {
	sel := manifest.Selector(r.in) + ",app.kubernetes.io/managed-by=" + manifest.ManagedBy
	objs, err := a.env.Cluster.SelectedObjects(ctx, sel, []string{r.in.Namespace}, manifest.ChartKinds())
	if err != nil {
		return nil, nil, fmt.Errorf("looking for objects the new layout no longer has: %w", err)
	}
	keep := map[string]bool{}
	for _, t := range r.targets {
		keep[t.Ref.Kind+" "+t.Ref.Namespace+"/"+t.Ref.Name] = true
	}
	var stale []*unstructured.Unstructured
	var names []string
	for _, o := range objs {
		if !ofInstall(r.in, o) || keep[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] ||
			(o.GetKind() == "Secret" && o.GetName() == manifest.SecretName(r.in)) || len(o.GetOwnerReferences()) > 0 {
			continue
		}
		stale = append(stale, o)
		names = append(names, kube.RefOf(o).String())
	}
	sort.Strings(names)
	return stale, names, nil
}

// RenderAsRunning renders in as upgrade would apply it to the agent as it
// runs: what the user did not set (the KAS address, CA and headers,
// agentk's version) taken from its Deployment, and its Secret's token (with the token-id
// annotation) and private-api-jwt kept. An agent not installed, or whose
// token is in a Secret the user named (config.secretName), renders as in
// says. diff NAME shows with it what upgrade NAME would change, but for
// agentk's version, which upgrade takes from KAS when GitLab answers: diff
// asks no GitLab.
func RenderAsRunning(ctx context.Context, c Cluster, in manifest.Input) (manifest.Output, error) {
	d, err := c.GetDeployment(ctx, in.Namespace, manifest.DeploymentName(in))
	if err != nil {
		return manifest.Output{}, err
	}
	var tokenID int64
	if d != nil {
		s, err := c.GetSecret(ctx, in.Namespace, manifest.SecretName(in))
		if err != nil {
			return manifest.Output{}, err
		}
		run, err := readRunning(ctx, c, d, in)
		if err != nil {
			return manifest.Output{}, err
		}
		cur := &installed{Running: run, apiJWT: apiJWTOf(s)}
		token := in.Values.Config.Token
		if s != nil && token == "" && !in.Set.Has("config.secretName") {
			tokenID, token = secretToken(s)
		}
		o := Options{Input: in}
		in = o.withCurrent(cur, token)
		in.PrivateAPIJWT = manifest.KeptPrivateAPIJWT(s)
	}
	return renderAnnotated(in, tokenID)
}
