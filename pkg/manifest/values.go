// Package manifest builds agentk's Kubernetes objects from the values of the
// official gitlab-agent Helm chart (2.6.2), with no Helm and no cluster.
package manifest

// The chart this package reproduces, and the agentk version it deploys when
// no image tag is given.
const (
	ChartName       = "gitlab-agent"
	ChartVersion    = "2.6.2"
	ChartAppVersion = "v17.3.1"
	// ManagedBy is our app.kubernetes.io/managed-by label value; the chart
	// writes "Helm" there.
	ManagedBy = "kubectl-gitlab-agent"
)

// Values are the chart's values.yaml keys. Free-form Kubernetes fields (the
// chart passes them through toYaml) are kept as decoded JSON values so that
// they reach the output exactly as the user wrote them.
type Values struct {
	Image                    Image             `json:"image"`
	ImagePullSecrets         []any             `json:"imagePullSecrets"`
	NameOverride             string            `json:"nameOverride"`
	FullnameOverride         string            `json:"fullnameOverride"`
	Replicas                 int64             `json:"replicas"`
	MaxSurge                 any               `json:"maxSurge"`
	MaxUnavailable           any               `json:"maxUnavailable"`
	RBAC                     RBAC              `json:"rbac"`
	ServiceAccount           ServiceAccount    `json:"serviceAccount"`
	PodSecurityContext       map[string]any    `json:"podSecurityContext"`
	SecurityContext          map[string]any    `json:"securityContext"`
	PodAnnotations           map[string]string `json:"podAnnotations"`
	ServiceMonitor           Toggle            `json:"serviceMonitor"`
	Config                   Config            `json:"config"`
	ExtraEnv                 []any             `json:"extraEnv"`
	ExtraArgs                []string          `json:"extraArgs"`
	ExtraVolumeMounts        []any             `json:"extraVolumeMounts"`
	ExtraVolumes             []any             `json:"extraVolumes"`
	Resources                map[string]any    `json:"resources"`
	NodeSelector             map[string]string `json:"nodeSelector"`
	Tolerations              []any             `json:"tolerations"`
	Affinity                 map[string]any    `json:"affinity"`
	PriorityClassName        string            `json:"priorityClassName"`
	RuntimeClassName         string            `json:"runtimeClassName"`
	HostAliases              []any             `json:"hostAliases"`
	PodLabels                map[string]string `json:"podLabels"`
	AdditionalLabels         map[string]string `json:"additionalLabels"`
	InitContainers           []any             `json:"initContainers"`
	TerminationMessagePolicy string            `json:"terminationMessagePolicy"`
}

// Image is the agentk image.
type Image struct {
	Repository string `json:"repository"`
	PullPolicy string `json:"pullPolicy"`
	Tag        string `json:"tag"`
}

// RBAC decides the agent's ClusterRoleBinding.
type RBAC struct {
	Create          bool   `json:"create"`
	UseExistingRole string `json:"useExistingRole"`
}

// ServiceAccount is the agent's ServiceAccount.
type ServiceAccount struct {
	Create      bool              `json:"create"`
	Annotations map[string]string `json:"annotations"`
	Name        string            `json:"name"`
}

// Toggle is a value block with only an enabled switch.
type Toggle struct {
	Enabled bool `json:"enabled"`
}

// Config is how agentk reaches KAS.
type Config struct {
	KasAddress                   string        `json:"kasAddress"`
	KasHeaders                   []string      `json:"kasHeaders"`
	Token                        string        `json:"token"`
	SecretName                   string        `json:"secretName"`
	KasCaCert                    string        `json:"kasCaCert"`
	Observability                Observability `json:"observability"`
	OperationalContainerScanning Toggle        `json:"operational_container_scanning"`
}

// Observability is agentk's metrics and probes endpoint.
type Observability struct {
	Enabled bool             `json:"enabled"`
	TLS     ObservabilityTLS `json:"tls"`
}

// ObservabilityTLS serves the observability endpoint over TLS.
type ObservabilityTLS struct {
	Enabled bool                   `json:"enabled"`
	Cert    string                 `json:"cert"`
	Key     string                 `json:"key"`
	Secret  ObservabilityTLSSecret `json:"secret"`
}

// ObservabilityTLSSecret names (and optionally creates) the TLS Secret.
type ObservabilityTLSSecret struct {
	Create bool   `json:"create"`
	Name   string `json:"name"`
}

// defaultValues are the chart's values.yaml defaults, as YAML.
const defaultValues = `
image:
  repository: registry.gitlab.com/gitlab-org/cluster-integration/gitlab-agent/agentk
  pullPolicy: IfNotPresent
  tag: ""
imagePullSecrets: []
nameOverride: ""
fullnameOverride: ""
replicas: 2
maxSurge: 1
maxUnavailable: 0
rbac:
  create: true
  useExistingRole: null
serviceAccount:
  create: true
  annotations: {}
  name: null
podSecurityContext: {}
securityContext: {}
podAnnotations:
  prometheus.io/scrape: "true"
  prometheus.io/path: /metrics
  prometheus.io/port: "8080"
serviceMonitor:
  enabled: false
config:
  kasAddress: wss://kas.gitlab.com
  kasHeaders: []
  token: null
  secretName: null
  kasCaCert: null
  observability:
    enabled: true
    tls:
      enabled: false
      cert: null
      key: null
      secret:
        create: false
        name: gitlab-agent-observability
  operational_container_scanning:
    enabled: true
extraEnv: []
extraArgs: []
extraVolumeMounts: []
extraVolumes: []
resources: {}
nodeSelector: {}
tolerations: []
affinity: {}
priorityClassName: ""
runtimeClassName: ""
hostAliases: []
podLabels: {}
additionalLabels: {}
initContainers: []
terminationMessagePolicy: FallbackToLogsOnError
`
