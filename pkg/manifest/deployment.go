package manifest

import "fmt"

// The paths agentk reads its files from, as the chart mounts them.
const (
	tokenMountDir    = "/etc/agentk/secrets"
	configMountDir   = "/etc/agentk/config"
	obsTLSMountDir   = "/etc/agentk/observability-secrets"
	saTokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// readOnlyFileMode is the chart's defaultMode 0444.
	readOnlyFileMode  = 0o444
	observabilityPort = 8080
)

// deployment is agentk's Deployment, field for field as the chart's
// templates/deployment.yaml makes it.
func deployment(n names, v Values, labels map[string]any) Object {
	d := newObject("apps/v1", "Deployment", deploymentName(n), n.namespace, labels)
	legacy := chartOf(v).legacy()

	podLabels := copyMap(labels)
	for k, val := range v.PodLabels {
		// 2.15.0 merges podLabels under the common labels (sprig's merge
		// keeps the first map's keys); 2.6.2 laid them over.
		if _, common := labels[k]; legacy || !common {
			podLabels[k] = val
		}
	}
	spec := map[string]any{
		"replicas": v.Replicas,
		"strategy": map[string]any{
			"rollingUpdate": map[string]any{"maxSurge": v.MaxSurge, "maxUnavailable": v.MaxUnavailable},
			"type":          "RollingUpdate",
		},
		"selector": map[string]any{"matchLabels": n.selectorLabels()},
		"template": map[string]any{
			"metadata": map[string]any{
				"annotations": podAnnotations(v),
				"labels":      podLabels,
			},
			"spec": podSpec(n, v),
		},
	}
	if !legacy && v.RevisionHistoryLimit != 0 {
		spec["revisionHistoryLimit"] = v.RevisionHistoryLimit
	}
	d["spec"] = spec
	return d
}

// podAnnotations are the values' podAnnotations, without the Prometheus ones
// when observability is off (nothing would listen), plus the token checksum.
func podAnnotations(v Values) map[string]any {
	a := map[string]any{}
	for k, val := range v.PodAnnotations {
		a[k] = val
	}
	if !v.Config.Observability.Enabled {
		delete(a, "prometheus.io/path")
		delete(a, "prometheus.io/port")
		delete(a, "prometheus.io/scrape")
	}
	if v.Config.Token != "" {
		a["checksum/token"] = TokenChecksum(v.Config.Token)
	}
	return a
}

func podSpec(n names, v Values) map[string]any {
	spec := map[string]any{
		"automountServiceAccountToken": false,
		"serviceAccountName":           n.serviceAccount,
		"securityContext":              orEmptyMap(v.PodSecurityContext),
		"containers":                   []any{container(n, v)},
		"volumes":                      volumes(n, v),
	}
	setIf(spec, "imagePullSecrets", v.ImagePullSecrets)
	if v.PriorityClassName != "" {
		spec["priorityClassName"] = v.PriorityClassName
	}
	if v.RuntimeClassName != "" {
		spec["runtimeClassName"] = v.RuntimeClassName
	}
	setIf(spec, "initContainers", v.InitContainers)
	if len(v.NodeSelector) > 0 {
		ns := map[string]any{}
		for k, val := range v.NodeSelector {
			ns[k] = val
		}
		spec["nodeSelector"] = ns
	}
	if len(v.Affinity) > 0 {
		spec["affinity"] = v.Affinity
	}
	setIf(spec, "tolerations", v.Tolerations)
	setIf(spec, "hostAliases", v.HostAliases)
	return spec
}

func container(n names, v Values) map[string]any {
	c := chartOf(v)
	tag := v.Image.Tag
	if tag == "" {
		tag = c.AppVersion
	}
	var args []any
	if c.legacy() {
		args = args262(v)
	} else {
		args = args2150(v)
	}
	probe := func(path string, delay, period int) map[string]any {
		return map[string]any{
			"httpGet":             map[string]any{"path": path, "port": observabilityPort},
			"initialDelaySeconds": delay,
			"periodSeconds":       period,
		}
	}
	ctr := map[string]any{
		"name":                     ChartName,
		"securityContext":          orEmptyMap(v.SecurityContext),
		"image":                    v.Image.Repository + ":" + tag,
		"imagePullPolicy":          v.Image.PullPolicy,
		"terminationMessagePolicy": v.TerminationMessagePolicy,
		"args":                     args,
		"livenessProbe":            probe("/liveness", 15, 20),
		"readinessProbe":           probe("/readiness", 5, 10),
		"resources":                orEmptyMap(v.Resources),
		"env":                      env(n, v),
		"volumeMounts":             volumeMounts(v),
	}
	if c.legacy() {
		if v.Config.Observability.Enabled {
			ctr["ports"] = []any{map[string]any{"name": "observability", "containerPort": observabilityPort, "protocol": "TCP"}}
		}
		return ctr
	}
	var ports []any // the chart writes "ports:" even when it lists none
	if v.Config.Observability.Enabled {
		ports = append(ports, map[string]any{"name": "observability", "containerPort": observabilityPort, "protocol": "TCP"})
	}
	if v.Config.Receptive.Enabled {
		ports = append(ports, map[string]any{"containerPort": v.Service.PrivateAPIPort, "name": "private-api"})
	}
	if (v.Config.Receptive.Enabled || v.Config.Observability.Enabled) && v.Service.InternalPort != 0 {
		ports = append(ports, map[string]any{"containerPort": v.Service.InternalPort, "name": "api"})
	}
	ctr["ports"] = ports
	return ctr
}

// args262 are chart 2.6.2's agentk arguments.
func args262(v Values) []any {
	args := []any{
		"--token-file=" + tokenMountDir + "/token",
		"--kas-address=" + v.Config.KasAddress,
	}
	if v.Config.KasCaCert != "" {
		args = append(args, "--kas-ca-cert-file="+configMountDir+"/ca.crt")
	}
	if v.Config.Observability.TLS.Enabled {
		args = append(args,
			"--observability-cert-file="+obsTLSMountDir+"/tls.crt",
			"--observability-key-file="+obsTLSMountDir+"/tls.key")
	}
	for _, h := range v.Config.KasHeaders {
		args = append(args, "--kas-header", h)
	}
	for _, a := range v.ExtraArgs {
		args = append(args, a)
	}
	return args
}

// args2150 are chart 2.15.0's: a receptive agent dials nothing and serves
// its API instead; one --kas-header= per header.
func args2150(v Values) []any {
	cfg := v.Config
	args := []any{"--token-file=" + tokenMountDir + "/token"}
	if !cfg.Receptive.Enabled {
		args = append(args, "--kas-address="+cfg.KasAddress)
		if cfg.KasCaCert != "" {
			args = append(args, "--kas-ca-cert-file="+configMountDir+"/ca.crt")
		}
		for _, h := range cfg.KasHeaders {
			args = append(args, "--kas-header="+h)
		}
	}
	if cfg.Observability.TLS.Enabled {
		args = append(args,
			"--observability-cert-file="+obsTLSMountDir+"/tls.crt",
			"--observability-key-file="+obsTLSMountDir+"/tls.key")
	}
	for _, a := range v.ExtraArgs {
		args = append(args, a)
	}
	if !cfg.Receptive.Enabled {
		return args
	}
	if cfg.API.ListenNetwork != "" {
		args = append(args, "--api-listen-network="+cfg.API.ListenNetwork)
	}
	if cfg.API.ListenAddress != "" {
		args = append(args, "--api-listen-address="+cfg.API.ListenAddress)
	}
	if cfg.API.JWTPublicKey != "" {
		args = append(args, "--api-jwt-file="+tokenMountDir+"/api-jwt")
	}
	if cfg.API.TLS.Enabled && !v.Ingress.TLS.Enabled {
		if cfg.API.TLS.Cert != "" {
			args = append(args, "--api-cert-file="+tokenMountDir+"/tls.crt")
		}
		if cfg.API.TLS.Key != "" {
			args = append(args, "--api-key-file="+tokenMountDir+"/tls.key")
		}
	}
	args = append(args, "--private-api-jwt-file="+tokenMountDir+"/private-api-jwt")
	if cfg.PrivateAPI.ListenNetwork != "" {
		args = append(args, "--private-api-listen-network="+cfg.PrivateAPI.ListenNetwork)
	}
	if cfg.PrivateAPI.ListenAddress != "" {
		args = append(args, "--private-api-listen-address="+cfg.PrivateAPI.ListenAddress)
	}
	if t := cfg.PrivateAPI.TLS; t.Enabled {
		if t.Cert != "" {
			args = append(args, "--private-api-cert-file="+tokenMountDir+"/private-api-tls-cert")
		}
		if t.Key != "" {
			args = append(args, "--private-api-key-file="+tokenMountDir+"/private-api-tls-key")
		}
		if t.CACert != "" {
			args = append(args, "--private-api-ca-cert-file="+configMountDir+"/private-api-ca.crt")
		}
	}
	return args
}

func fieldEnv(name, path string) map[string]any {
	return map[string]any{"name": name, "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": path}}}
}

func resourceEnv(name, resource string) map[string]any {
	return map[string]any{"name": name, "valueFrom": map[string]any{"resourceFieldRef": map[string]any{"resource": resource}}}
}

// TelemetryInstallationMethod is what agentk reports as how it was
// installed (chart 2.15.0 says "helm-chart").
const TelemetryInstallationMethod = ManagedBy

func env(n names, v Values) []any {
	ocs := v.Config.OperationalContainerScanning.Enabled
	e := []any{
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("POD_NAME", "metadata.name"),
	}
	if c := chartOf(v); !c.legacy() {
		e = append(e,
			fieldEnv("POD_IP", "status.podIP"),
			map[string]any{"name": "GITLAB_AGENT_TELEMETRY_installation_method", "value": TelemetryInstallationMethod},
			map[string]any{"name": "GITLAB_AGENT_TELEMETRY_helm_chart_version", "value": c.Version})
		if v.Config.Receptive.Enabled {
			scheme := "grpc"
			if v.Config.PrivateAPI.TLS.Enabled {
				scheme = "grpcs"
			}
			e = append(e,
				map[string]any{"name": "OWN_PRIVATE_API_URL", "value": fmt.Sprintf("%s://$(POD_IP):%d", scheme, v.Service.PrivateAPIPort)},
				map[string]any{"name": "POD_SELECTOR_LABELS", "value": "app.kubernetes.io/name=" + n.name + ",app.kubernetes.io/instance=" + n.release})
		}
	}
	e = append(e,
		fieldEnv("SERVICE_ACCOUNT_NAME", "spec.serviceAccountName"),
		map[string]any{"name": "OCS_ENABLED", "value": boolText(ocs)})
	if ocs {
		e = append(e, map[string]any{"name": "OCS_SERVICE_ACCOUNT_NAME", "value": n.ocsServiceAccount})
	}
	// Go's runtime follows the container's limits, as the chart sets up.
	limits, _ := v.Resources["limits"].(map[string]any)
	if truthy(limits["cpu"]) {
		e = append(e, resourceEnv("GOMAXPROCS", "limits.cpu"))
	}
	if truthy(limits["memory"]) {
		e = append(e, resourceEnv("GOMEMLIMIT", "limits.memory"))
	}
	return append(e, v.ExtraEnv...)
}

func volumeMounts(v Values) []any {
	mount := func(name, path string) map[string]any {
		return map[string]any{"name": name, "mountPath": path, "readOnly": true}
	}
	m := []any{mount("service-account-token-volume", saTokenMountPath)}
	// Unlike the chart, the token Secret is always mounted: without a token
	// or secretName in the values it is "<fullname>-token", which install
	// creates (the chart would render an agent with no token at all).
	m = append(m, mount("secret-volume", tokenMountDir))
	if v.Config.Observability.TLS.Enabled {
		m = append(m, mount("observability-secret-volume", obsTLSMountDir))
	}
	if needsConfigVolume(v) {
		m = append(m, mount("config-volume", configMountDir))
	}
	return append(m, v.ExtraVolumeMounts...)
}

func volumes(n names, v Values) []any {
	secretVolume := func(name, secret string) map[string]any {
		return map[string]any{"name": name, "secret": map[string]any{"defaultMode": readOnlyFileMode, "secretName": secret}}
	}
	vols := []any{
		map[string]any{
			"name": "service-account-token-volume",
			"projected": map[string]any{
				"defaultMode": readOnlyFileMode,
				"sources": []any{
					map[string]any{"configMap": map[string]any{"name": "kube-root-ca.crt"}},
					map[string]any{"downwardAPI": map[string]any{"items": []any{map[string]any{
						"fieldRef": map[string]any{"apiVersion": "v1", "fieldPath": "metadata.namespace"},
						"path":     "namespace",
					}}}},
					map[string]any{"serviceAccountToken": map[string]any{"expirationSeconds": 3600, "path": "token"}},
				},
			},
		},
		secretVolume("secret-volume", n.secret),
	}
	if v.Config.Observability.TLS.Enabled {
		vols = append(vols, secretVolume("observability-secret-volume", n.observabilitySecret))
	}
	if needsConfigVolume(v) {
		vols = append(vols, map[string]any{"name": "config-volume", "configMap": map[string]any{"defaultMode": readOnlyFileMode, "name": n.full}})
	}
	return append(vols, v.ExtraVolumes...)
}

// needsConfigVolume: the ConfigMap holds KAS's CA, and (2.15.0) the
// private API's.
func needsConfigVolume(v Values) bool {
	return v.Config.KasCaCert != "" || (!chartOf(v).legacy() && v.Config.PrivateAPI.TLS.CACert != "")
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// truthy is Go template truth, as the chart's `if` sees a value.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != ""
	case bool:
		return t
	case map[string]any:
		return len(t) > 0
	case []any:
		return len(t) > 0
	}
	s, _ := scalarString(v)
	return s != "0" && s != ""
}

func orEmptyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func setIf(m map[string]any, key string, list []any) {
	if len(list) > 0 {
		m[key] = list
	}
}
