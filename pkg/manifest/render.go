package manifest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
)

// Object is one rendered Kubernetes object, as its JSON map.
type Object = map[string]any

// Input is what Render needs: the release (agent) name, its namespace and the
// chart values.
type Input struct {
	// Name is the agent's name; it is also the Helm release name the chart
	// would have been installed under, so names match a chart install.
	Name      string
	Namespace string
	// NoNamespace leaves the Namespace object out (it exists already).
	NoNamespace bool
	Values      Values
	// Set lists the value keys the user set; the rest are the chart's
	// defaults.
	Set Keys
	// PrivateAPIJWT is a receptive agent's private-api-jwt as the live
	// Secret's data holds it (base64), kept across upgrades as the chart's
	// lookup keeps it; "" makes a new random one.
	PrivateAPIJWT string
	// ChartAsked: the user named the chart version (--chart-version);
	// else it is the default, and an action that keeps the layout an agent
	// runs with may layer the values again for that (InChart).
	ChartAsked bool
	// relayer layers the same values over another chart's defaults.
	relayer func(chart string) (Values, Keys, error)
}

// Output is the rendered object set.
type Output struct {
	Objects []Object
	// Embedded lists the Secrets (namespace/name) whose data carries a
	// credential from the values, so that callers can warn about it.
	Embedded []string
}

// DefaultNamespace is where an agent goes when no namespace is given.
func DefaultNamespace(name string) string {
	return "gitlab-agent-" + name
}

// names are the chart's computed names for one release.
type names struct {
	release, namespace  string
	name                string // gitlab-agent.name
	full                string // gitlab-agent.fullname
	serviceAccount      string
	secret              string
	ocsServiceAccount   string
	observabilitySecret string
	service             string // chart 2.15.0's <fullname|trunc 55>-service
}

// trunc63 is the chart's `trunc 63 | trimSuffix "-"`.
func trunc63(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimSuffix(s, "-")
}

func computeNames(in Input) names {
	v := in.Values
	n := names{release: in.Name, namespace: in.Namespace}
	chartName := ChartName
	if v.NameOverride != "" {
		chartName = v.NameOverride
	}
	n.name = trunc63(chartName)
	switch {
	case v.FullnameOverride != "":
		n.full = trunc63(v.FullnameOverride)
	case strings.Contains(in.Name, chartName):
		n.full = trunc63(in.Name)
	default:
		n.full = trunc63(in.Name + "-" + chartName)
	}
	switch {
	case v.ServiceAccount.Name != "":
		n.serviceAccount = v.ServiceAccount.Name
	case v.ServiceAccount.Create:
		n.serviceAccount = n.full
	default:
		n.serviceAccount = "default"
	}
	n.secret = v.Config.SecretName
	if n.secret == "" {
		n.secret = n.full + "-token"
	}
	n.ocsServiceAccount = n.full + "-ocs-scanning-pod-sa"
	n.observabilitySecret = v.Config.Observability.TLS.Secret.Name
	if n.observabilitySecret == "" {
		n.observabilitySecret = n.full + "-observability"
	}
	svc := n.full
	if len(svc) > 55 {
		svc = svc[:55]
	}
	n.service = svc + "-service"
	return n
}

// SecretName is the Secret that holds the agent token for this input.
func SecretName(in Input) string { return computeNames(in).secret }

// DeploymentName is the agentk Deployment's name for this input.
func DeploymentName(in Input) string { return deploymentName(computeNames(in)) }

// deploymentName carries the chart's "-v2" epoch suffix (the chart truncates
// the full name to 60 characters first, without trimming a trailing '-').
func deploymentName(n names) string {
	full := n.full
	if len(full) > 60 {
		full = full[:60]
	}
	return full + "-v2"
}

func (n names) selectorLabels() map[string]any {
	return map[string]any{
		"app.kubernetes.io/name":     n.name,
		"app.kubernetes.io/instance": n.release,
	}
}

// SelectorLabels are the labels that identify an install's objects, the
// chart's as well as ours.
func SelectorLabels(in Input) map[string]string {
	out := map[string]string{}
	for k, v := range computeNames(in).selectorLabels() {
		out[k] = v.(string)
	}
	return out
}

// AllAgents selects every install's objects, whatever its name.
const AllAgents = "app.kubernetes.io/name=" + ChartName

// InstanceOf is the agent an object of an install belongs to, by its
// labels ("" none).
func InstanceOf(labels map[string]string) string { return labels["app.kubernetes.io/instance"] }

// Selector is SelectorLabels as a label selector.
func Selector(in Input) string {
	return labels.SelectorFromSet(SelectorLabels(in)).String()
}

// Owns says whether an object Selector found (namespace "" when it is
// cluster-scoped) is of this install: a namespaced object in its namespace,
// a cluster-scoped one named for it (its Namespace, or "NAMESPACE:..." as
// the chart names its ClusterRoles and bindings). The same agent installed
// in another namespace carries the same labels.
func (in Input) Owns(namespace, name string) bool {
	if namespace != "" {
		return namespace == in.Namespace
	}
	return name == in.Namespace || strings.HasPrefix(name, in.Namespace+":")
}

func commonLabels(n names, v Values) map[string]any {
	l := n.selectorLabels()
	l["app.kubernetes.io/version"] = chartOf(v).AppVersion
	l["app.kubernetes.io/managed-by"] = ManagedBy
	for k, val := range v.AdditionalLabels {
		l[k] = val
	}
	return l
}

// Render builds the agentk objects that `helm template` of the gitlab-agent
// chart (the version in.Values are for) makes for the same release name,
// namespace and values, with these differences: no helm.sh/chart label,
// managed-by kubectl-gitlab-agent, every namespaced object names its
// namespace (as a chart install puts it there), a Namespace object first,
// when the values name no token and no Secret the Deployment mounts the
// Secret "<fullname>-token" that install fills, and (2.15.0) the telemetry
// installation method names this plugin.
func Render(in Input) (Output, error) {
	if err := agentname.Validate(in.Name); err != nil {
		return Output{}, err
	}
	if in.Namespace == "" {
		in.Namespace = DefaultNamespace(in.Name)
	}
	if len(validation.IsDNS1123Label(in.Namespace)) > 0 {
		return Output{}, fmt.Errorf("invalid namespace %q: it must be a DNS label (lowercase letters, digits, '-')", in.Namespace)
	}
	v := in.Values
	if v.Config.Observability.TLS.Enabled && v.Config.Observability.TLS.Secret.Create &&
		(v.Config.Observability.TLS.Cert == "" || v.Config.Observability.TLS.Key == "") {
		return Output{}, fmt.Errorf("config.observability.tls.secret.create needs config.observability.tls.cert and config.observability.tls.key")
	}
	c := chartOf(v)
	if !c.legacy() {
		if err := validate2150(v); err != nil {
			return Output{}, err
		}
	}
	n := computeNames(in)
	labels := commonLabels(n, v)
	var out Output
	add := func(o Object) { out.Objects = append(out.Objects, o) }

	if !in.NoNamespace {
		add(newObject("v1", "Namespace", in.Namespace, "", labels))
	}
	if v.ServiceAccount.Create {
		sa := newObject("v1", "ServiceAccount", n.serviceAccount, n.namespace, labels)
		setAnnotations(sa, v.ServiceAccount.Annotations)
		add(sa)
	}
	if c.legacy() && v.Config.Token != "" {
		s := newObject("v1", "Secret", n.secret, n.namespace, labels)
		s["type"] = "Opaque"
		s["data"] = map[string]any{"token": base64.StdEncoding.EncodeToString([]byte(v.Config.Token))}
		add(s)
		out.Embedded = append(out.Embedded, n.namespace+"/"+n.secret)
	}
	if !c.legacy() {
		s, err := secret2150(n, v, labels, in.PrivateAPIJWT)
		if err != nil {
			return Output{}, err
		}
		if s != nil {
			add(s)
			if v.Config.Token != "" || v.Config.API.TLS.Key != "" || v.Config.PrivateAPI.TLS.Key != "" {
				out.Embedded = append(out.Embedded, n.namespace+"/"+n.secret)
			}
		}
	}
	if obsTLS := v.Config.Observability.TLS; obsTLS.Enabled && obsTLS.Secret.Create {
		s := newObject("v1", "Secret", n.observabilitySecret, n.namespace, labels)
		s["type"] = "kubernetes.io/tls"
		s["data"] = map[string]any{
			"tls.crt": base64.StdEncoding.EncodeToString([]byte(obsTLS.Cert)),
			"tls.key": base64.StdEncoding.EncodeToString([]byte(obsTLS.Key)),
		}
		add(s)
		out.Embedded = append(out.Embedded, n.namespace+"/"+n.observabilitySecret)
	}
	if v.Config.KasCaCert != "" || (!c.legacy() && v.Config.PrivateAPI.TLS.CACert != "") {
		cm := newObject("v1", "ConfigMap", n.full, n.namespace, labels)
		data := map[string]any{}
		if v.Config.KasCaCert != "" {
			data["ca.crt"] = v.Config.KasCaCert
		}
		if v.Config.PrivateAPI.TLS.CACert != "" {
			data["private-api-ca.crt"] = v.Config.PrivateAPI.TLS.CACert
		}
		cm["data"] = data
		add(cm)
	}
	if v.RBAC.Create {
		role := v.RBAC.UseExistingRole
		if role == "" {
			role = "cluster-admin"
		}
		crb := newObject("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", n.namespace+":"+n.full+"-"+role, "", labels)
		crb["roleRef"] = map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
		crb["subjects"] = []any{saSubject(n.serviceAccount, n.namespace)}
		add(crb)
	}
	if v.Config.OperationalContainerScanning.Enabled {
		out.Objects = append(out.Objects, ocsObjects(n, v, labels)...)
	}
	if v.ServiceMonitor.Enabled {
		out.Objects = append(out.Objects, serviceMonitorObjects(n, labels)...)
	}
	if !c.legacy() {
		if v.Config.Receptive.Enabled || v.Config.Observability.Enabled {
			add(service2150(n, v, labels))
		}
		if v.Config.Receptive.Enabled && v.Ingress.Enabled {
			add(ingress2150(n, v, labels))
		}
	}
	add(deployment(n, v, labels))
	sortObjects(out.Objects)
	return out, nil
}

func newObject(apiVersion, kind, name, namespace string, labels map[string]any) Object {
	meta := map[string]any{"name": name, "labels": copyMap(labels)}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	return Object{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
}

func setAnnotations(o Object, a map[string]string) {
	if len(a) == 0 {
		return
	}
	m := map[string]any{}
	for k, v := range a {
		m[k] = v
	}
	o["metadata"].(map[string]any)["annotations"] = m
}

func saSubject(name, namespace string) map[string]any {
	return map[string]any{"kind": "ServiceAccount", "name": name, "namespace": namespace}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ocsObjects are the RBAC objects for operational container scanning.
func ocsObjects(n names, v Values, labels map[string]any) []Object {
	listGet := []any{"list", "get"}
	rule := func(group string, resources ...string) map[string]any {
		rs := make([]any, len(resources))
		for i, r := range resources {
			rs[i] = r
		}
		return map[string]any{"apiGroups": []any{group}, "resources": rs, "verbs": listGet}
	}
	roleName := n.full + ":ocs"
	clusterRoleName := n.namespace + ":" + n.full + ":ocs"

	sa := newObject("v1", "ServiceAccount", n.ocsServiceAccount, n.namespace, labels)
	setAnnotations(sa, v.ServiceAccount.Annotations)

	cr := newObject("rbac.authorization.k8s.io/v1", "ClusterRole", clusterRoleName, "", labels)
	cr["rules"] = []any{
		rule("batch", "cronjobs", "jobs"),
		rule("", "pods", "replicationcontrollers", "serviceaccounts", "namespaces", "services",
			"configmaps", "resourcequotas", "limitranges", "nodes", "secrets"),
		rule("apps", "replicasets", "daemonsets", "statefulsets", "deployments"),
		rule("rbac.authorization.k8s.io", "roles", "rolebindings", "clusterroles", "clusterrolebindings"),
		rule("networking.k8s.io", "networkpolicies", "ingresses"),
	}
	crb := newObject("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", clusterRoleName, "", labels)
	crb["roleRef"] = map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": clusterRoleName}
	crb["subjects"] = []any{saSubject(n.ocsServiceAccount, n.namespace)}

	role := newObject("rbac.authorization.k8s.io/v1", "Role", roleName, n.namespace, labels)
	role["rules"] = []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"configmaps"}, "verbs": []any{"create"}}}
	rb := newObject("rbac.authorization.k8s.io/v1", "RoleBinding", roleName, n.namespace, labels)
	rb["roleRef"] = map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": roleName}
	rb["subjects"] = []any{saSubject(n.ocsServiceAccount, n.namespace)}
	return []Object{sa, cr, crb, role, rb}
}

// serviceMonitorObjects are the observability Service (labelled with the
// selector labels only, as in the chart) and the Prometheus ServiceMonitor.
func serviceMonitorObjects(n names, labels map[string]any) []Object {
	name := n.full + "-observability"
	svc := newObject("v1", "Service", name, n.namespace, n.selectorLabels())
	svc["spec"] = map[string]any{
		"type":     "ClusterIP",
		"ports":    []any{map[string]any{"port": 8080, "protocol": "TCP", "name": "observability"}},
		"selector": n.selectorLabels(),
	}
	sm := newObject("monitoring.coreos.com/v1", "ServiceMonitor", name, n.namespace, labels)
	sm["spec"] = map[string]any{
		"selector":          map[string]any{"matchLabels": n.selectorLabels()},
		"namespaceSelector": map[string]any{"matchNames": []any{n.namespace}},
		"endpoints":         []any{map[string]any{"port": "observability", "interval": "30s", "scrapeTimeout": "25s"}},
	}
	return []Object{svc, sm}
}

// TokenChecksum is the pod annotation value that rolls the pods when the
// token changes (the chart's `sha256sum` of the token).
func TokenChecksum(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ChartKind reports a kind the chart makes (of any version followed): the
// Namespace is ours, not the chart's.
func ChartKind(kind string) bool {
	_, ok := kindOrder[kind]
	return (ok && kind != "Namespace") || kind == "ServiceMonitor"
}

// ChartKinds are the kinds ChartKind accepts.
func ChartKinds() []string {
	out := []string{"ServiceMonitor"}
	for k := range kindOrder {
		if ChartKind(k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// kindOrder is Helm's install order for the kinds we render; unknown kinds
// (the ServiceMonitor) go last, as Helm puts them.
var kindOrder = map[string]int{
	"Namespace": 0, "ServiceAccount": 1, "Secret": 2, "ConfigMap": 3, "ClusterRole": 4,
	"ClusterRoleBinding": 5, "Role": 6, "RoleBinding": 7, "Service": 8, "Deployment": 9, "Ingress": 10,
}

func sortObjects(objs []Object) {
	rank := func(o Object) int {
		if r, ok := kindOrder[o["kind"].(string)]; ok {
			return r
		}
		return len(kindOrder)
	}
	sort.SliceStable(objs, func(i, j int) bool {
		ri, rj := rank(objs[i]), rank(objs[j])
		if ri != rj {
			return ri < rj
		}
		return objs[i]["metadata"].(map[string]any)["name"].(string) < objs[j]["metadata"].(map[string]any)["name"].(string)
	})
}
