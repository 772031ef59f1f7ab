// Package manifest builds agentk's Kubernetes objects from the values of the
// official gitlab-agent Helm chart, with no Helm and no cluster. It follows
// two chart versions: 2.15.0 (the default) and 2.6.2 (see Charts).
package manifest

// ChartName is the chart's name, and agentk's container name.
const (
	ChartName = "gitlab-agent"
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

	// Since chart 2.15.0.
	RevisionHistoryLimit int64          `json:"revisionHistoryLimit"`
	Service              Service        `json:"service"`
	Ingress              Ingress        `json:"ingress"`
	IngressNginx         map[string]any `json:"ingress-nginx"`

	// Chart is the chart version these values are for (Load sets it; ""
	// is DefaultChartVersion).
	Chart string `json:"-"`
}

// Service is the agent's Service (chart 2.15.0): the observability port,
// and in receptive mode the API that KAS dials.
type Service struct {
	Type                     string   `json:"type"`
	ExternalPort             int64    `json:"externalPort"`
	InternalPort             int64    `json:"internalPort"`
	PrivateAPIPort           int64    `json:"privateApiPort"`
	LoadBalancerIP           string   `json:"loadBalancerIP"`
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges"`
}

// Ingress exposes a receptive agent's API (chart 2.15.0).
type Ingress struct {
	Enabled     bool              `json:"enabled"`
	Provider    string            `json:"provider"`
	Annotations map[string]string `json:"annotations"`
	Hostname    string            `json:"hostname"`
	TLS         Toggle            `json:"tls"`
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

	// Since chart 2.15.0: a receptive agent is dialled by KAS instead.
	Receptive  Toggle     `json:"receptive"`
	API        API        `json:"api"`
	PrivateAPI PrivateAPI `json:"privateApi"`
}

// API is the endpoint a receptive agent serves KAS on.
type API struct {
	ListenNetwork string `json:"listenNetwork"`
	ListenAddress string `json:"listenAddress"`
	JWTPublicKey  string `json:"jwtPublicKey"`
	TLS           APITLS `json:"tls"`
}

// APITLS is a certificate and key for API.
type APITLS struct {
	Enabled bool   `json:"enabled"`
	Cert    string `json:"cert"`
	Key     string `json:"key"`
}

// PrivateAPI is the endpoint agentk replicas talk to each other on.
type PrivateAPI struct {
	ListenNetwork string        `json:"listenNetwork"`
	ListenAddress string        `json:"listenAddress"`
	TLS           PrivateAPITLS `json:"tls"`
}

// PrivateAPITLS is PrivateAPI's certificate, key and CA.
type PrivateAPITLS struct {
	Enabled bool   `json:"enabled"`
	Cert    string `json:"cert"`
	Key     string `json:"key"`
	CACert  string `json:"caCert"`
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

// defaults262 are chart 2.6.2's values.yaml defaults, as YAML.
const defaults262 = `
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

// defaults2150 are what chart 2.15.0's values.yaml adds to defaults262.
const defaults2150 = `
revisionHistoryLimit: null
config:
  receptive:
    enabled: false
  api:
    listenNetwork: tcp
    listenAddress: ":8082"
    jwtPublicKey: null
    tls:
      enabled: false
      cert: null
      key: null
  privateApi:
    listenNetwork: tcp
    listenAddress: ":8081"
    tls:
      enabled: false
      cert: null
      key: null
      caCert: null
service:
  type: ClusterIP
  externalPort: 8182
  internalPort: 8082
  privateApiPort: 8081
ingress:
  enabled: false
  provider: nginx
  annotations: {}
  hostname: agent.example.com
  tls:
    enabled: false
ingress-nginx:
  enabled: false
  controller:
    ingressClassResource:
      name: gitlab-agent-nginx
`
