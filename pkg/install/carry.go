package install

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// Carried are the values withCurrent takes from the running Deployment
// when the user does not set them (besides how agentk reaches KAS and its
// version): those the chart writes into the Deployment as they are, so
// that they read back exactly. The others (podAnnotations, extraArgs,
// extraEnv, ... mixed there with the chart's own) are the chart's defaults
// unless given again.
var Carried = []string{
	"replicas", "image.repository", "image.pullPolicy", "imagePullSecrets",
	"resources", "securityContext", "podSecurityContext",
	"nodeSelector", "tolerations", "affinity", "priorityClassName", "runtimeClassName", "hostAliases",
}

// carry sets in's values that the user did not set (Carried) to what the
// Deployment runs with; what it does not show keeps the chart's default.
func (r Running) carry(in *manifest.Input) {
	v, set := &in.Values, in.Set
	keep := func(key string) bool {
		for k := range set {
			if k == key || strings.HasPrefix(k, key+".") {
				return false
			}
		}
		return true
	}
	if r.Replicas != nil && keep("replicas") {
		v.Replicas = int64(*r.Replicas)
	}
	if repo := imageRepository(r.Image); repo != "" && keep("image.repository") {
		v.Image.Repository = repo
	}
	if c := r.Container; c != nil {
		if c.ImagePullPolicy != "" && keep("image.pullPolicy") {
			v.Image.PullPolicy = string(c.ImagePullPolicy)
		}
		carryJSON(&v.Resources, c.Resources, keep("resources"))
		carryJSON(&v.SecurityContext, c.SecurityContext, keep("securityContext"))
	}
	p := r.Pod
	if p == nil {
		return
	}
	if len(p.NodeSelector) > 0 && keep("nodeSelector") {
		v.NodeSelector = map[string]string{}
		for k, val := range p.NodeSelector {
			v.NodeSelector[k] = val
		}
	}
	if p.PriorityClassName != "" && keep("priorityClassName") {
		v.PriorityClassName = p.PriorityClassName
	}
	if p.RuntimeClassName != nil && *p.RuntimeClassName != "" && keep("runtimeClassName") {
		v.RuntimeClassName = *p.RuntimeClassName
	}
	carryJSON(&v.PodSecurityContext, p.SecurityContext, keep("podSecurityContext"))
	carryJSON(&v.Affinity, p.Affinity, keep("affinity"))
	carryJSON(&v.Tolerations, p.Tolerations, keep("tolerations"))
	carryJSON(&v.ImagePullSecrets, p.ImagePullSecrets, keep("imagePullSecrets"))
	carryJSON(&v.HostAliases, p.HostAliases, keep("hostAliases"))
}

// carryJSON sets *dst to live, as the values hold it (decoded JSON), when
// ok and live says anything.
func carryJSON[T any](dst *T, live any, ok bool) {
	if !ok {
		return
	}
	b, err := json.Marshal(live)
	if err != nil || string(b) == "null" || string(b) == "{}" || string(b) == "[]" {
		return
	}
	var out T
	if json.Unmarshal(b, &out) == nil {
		*dst = out
	}
}

// imageRepository is image without its tag and digest ("" when it does
// not parse).
func imageRepository(image string) string {
	ref, err := reference.Parse(image)
	if err != nil {
		return ""
	}
	if n, ok := ref.(reference.Named); ok {
		return n.Name()
	}
	return ""
}

// runningChart is the chart version whose layout d follows, when one
// followed: the chart version agentk's telemetry names (2.15.0 and
// later), else Helm's chart label, else the chart whose agentk the
// version label names (our renders and the chart's set it to the chart's
// appVersion); "" when none says.
func runningChart(d *appsv1.Deployment, r Running) string {
	var named []string
	if r.Container != nil {
		for _, e := range r.Container.Env {
			if e.Name == "GITLAB_AGENT_TELEMETRY_helm_chart_version" {
				named = append(named, e.Value)
			}
		}
	}
	if c, ok := strings.CutPrefix(d.Labels["helm.sh/chart"], manifest.ChartName+"-"); ok {
		named = append(named, c)
	}
	for _, c := range named {
		if ch, err := manifest.LookupChart(c); err == nil {
			return ch.Version
		}
	}
	if len(named) > 0 {
		return strings.TrimPrefix(named[0], "v") // a chart not followed
	}
	for _, c := range manifest.Charts {
		if d.Labels["app.kubernetes.io/version"] == c.AppVersion {
			return c.Version
		}
	}
	return ""
}

// beyondToken lists what applying r changes that a new token does not
// need (the token Secret's token and token-id, the pods' token checksum):
// values a rotation renders from defaults because the user did not give
// them again, or a layout that moves.
func beyondToken(r *rendered) []string {
	var out []string
	for _, o := range r.diff.Objects {
		if o.Action != diff.Changed && o.Action != diff.Created && o.Action != diff.Pruned {
			continue
		}
		var paths []string
		for _, p := range o.ChangedPaths {
			switch {
			case o.Kind == "Secret" && o.Name == manifest.SecretName(r.in) && (p == ".data.token" || p == ".metadata.annotations['"+TokenIDAnnotation+"']"):
			case o.Kind == "Deployment" && p == ".spec.template.metadata.annotations['checksum/token']":
			default:
				paths = append(paths, p)
			}
		}
		if len(paths) > 0 {
			out = append(out, fmt.Sprintf("%s %s", o.Ref, strings.Join(paths, ", ")))
		}
	}
	return out
}

// sayBeyondToken warns when a rotation's render changes more than the token.
func (a *action) sayBeyondToken(r *rendered) {
	if more := beyondToken(r); len(more) > 0 {
		a.say("warning: besides the token, the rotation changes " + strings.Join(more, "; ") +
			" (the values given, and the chart's defaults for those not given again: pass the -f and --set the agent was installed with to keep them)")
	}
}
