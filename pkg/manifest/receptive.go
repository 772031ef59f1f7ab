package manifest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// What chart 2.15.0 adds: the Service, receptive agents (KAS dials agentk's
// API; agentk replicas share a private API), their Secret keys and an
// Ingress.

// validate2150 refuses what chart 2.15.0 refuses, and the subchart we do
// not render.
func validate2150(v Values) error {
	if truthy(v.IngressNginx["enabled"]) {
		return fmt.Errorf("ingress-nginx.enabled: the chart's bundled ingress-nginx is not rendered by this plugin: install ingress-nginx separately (its own Helm chart), with an IngressClass named gitlab-agent-nginx, and leave ingress-nginx.enabled false")
	}
	if !v.Config.Receptive.Enabled {
		return nil
	}
	check := func(key, addr, portKey string, port int64) error {
		if !strings.Contains(addr, ":") {
			return fmt.Errorf("%s must be in the format of host:port or :port", key)
		}
		p := addr[strings.LastIndex(addr, ":")+1:]
		if p != strconv.FormatInt(port, 10) {
			return fmt.Errorf("%s %q must be equal to the port that is set in %s %q", portKey, strconv.FormatInt(port, 10), key, p)
		}
		return nil
	}
	if err := check("config.api.listenAddress", v.Config.API.ListenAddress, "service.internalPort", v.Service.InternalPort); err != nil {
		return err
	}
	return check("config.privateApi.listenAddress", v.Config.PrivateAPI.ListenAddress, "service.privateApiPort", v.Service.PrivateAPIPort)
}

// secret2150 is chart 2.15.0's Secret: the token, and a receptive agent's
// keys; nil when the chart would make none.
func secret2150(n names, v Values, labels map[string]any, privateAPIJWT string) (Object, error) {
	c := v.Config
	if c.Token == "" && c.API.JWTPublicKey == "" && c.API.TLS.Cert == "" && c.API.TLS.Key == "" &&
		c.PrivateAPI.TLS.Cert == "" && c.PrivateAPI.TLS.Key == "" && !c.Receptive.Enabled {
		return nil, nil
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	data := map[string]any{}
	if c.Token != "" {
		data["token"] = b64(c.Token)
	}
	if c.API.JWTPublicKey != "" {
		data[APIJWTKey] = b64(c.API.JWTPublicKey)
	}
	if c.API.TLS.Enabled {
		if c.API.TLS.Cert != "" {
			data["tls.crt"] = b64(c.API.TLS.Cert)
		}
		if c.API.TLS.Key != "" {
			data["tls.key"] = b64(c.API.TLS.Key)
		}
	}
	if c.PrivateAPI.TLS.Enabled {
		if c.PrivateAPI.TLS.Cert != "" {
			data["private-api-tls-cert"] = b64(c.PrivateAPI.TLS.Cert)
		}
		if c.PrivateAPI.TLS.Key != "" {
			data["private-api-tls-key"] = b64(c.PrivateAPI.TLS.Key)
		}
	}
	if c.Receptive.Enabled {
		if privateAPIJWT == "" {
			// The chart's randAscii 64 | b64enc | b64enc: the file agentk
			// reads holds the base64 of 64 random printable characters.
			r, err := randASCII(64)
			if err != nil {
				return nil, fmt.Errorf("making the private API's JWT secret: %w", err)
			}
			privateAPIJWT = b64(b64(r))
		}
		data[PrivateAPIJWTKey] = privateAPIJWT
	}
	s := newObject("v1", "Secret", n.secret, n.namespace, labels)
	s["type"] = "Opaque"
	s["data"] = data
	return s, nil
}

// APIJWTKey is the key of a receptive agent's Secret that holds
// config.api.jwtPublicKey, the file agentk's --api-jwt-file reads.
const APIJWTKey = "api-jwt"

// PrivateAPIJWTKey is the key of a receptive agent's Secret that Render
// keeps when given Input.PrivateAPIJWT.
const PrivateAPIJWTKey = "private-api-jwt"

// KeptPrivateAPIJWT is the private-api-jwt a live Secret (nil: none) holds,
// as Input.PrivateAPIJWT takes it; "" when it holds none.
func KeptPrivateAPIJWT(s *corev1.Secret) string {
	if s == nil || len(s.Data[PrivateAPIJWTKey]) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(s.Data[PrivateAPIJWTKey])
}

// randASCII is n random printable ASCII characters (sprig's randAscii).
func randASCII(n int) (string, error) {
	const lo, hi = 32, 126
	b := make([]byte, n)
	for i := range b {
		r, err := rand.Int(rand.Reader, big.NewInt(hi-lo+1))
		if err != nil {
			return "", err
		}
		b[i] = byte(lo + r.Int64())
	}
	return string(b), nil
}

// service2150 is the agent's Service: observability, and a receptive
// agent's API.
func service2150(n names, v Values, labels map[string]any) Object {
	s := newObject("v1", "Service", n.service, n.namespace, labels)
	typ := v.Service.Type
	if typ == "" {
		typ = "ClusterIP"
	}
	spec := map[string]any{"type": typ, "selector": n.selectorLabels()}
	if typ == "LoadBalancer" {
		if v.Service.LoadBalancerIP != "" {
			spec["loadBalancerIP"] = v.Service.LoadBalancerIP
		}
		if len(v.Service.LoadBalancerSourceRanges) > 0 {
			ranges := make([]any, len(v.Service.LoadBalancerSourceRanges))
			for i, r := range v.Service.LoadBalancerSourceRanges {
				ranges[i] = r
			}
			spec["loadBalancerSourceRanges"] = ranges
		}
	}
	var ports []any
	if v.Config.Receptive.Enabled {
		ports = append(ports, map[string]any{
			"port": orDefault(v.Service.ExternalPort, 8182), "targetPort": orDefault(v.Service.InternalPort, 8082),
			"protocol": "TCP", "name": "tcp-" + n.name + "-external-api",
		})
	}
	if v.Config.Observability.Enabled {
		ports = append(ports, map[string]any{
			"port": observabilityPort, "targetPort": "observability", "protocol": "TCP", "name": "tcp-" + n.name + "-observability",
		})
	}
	spec["ports"] = ports
	s["spec"] = spec
	return s
}

func orDefault(n, d int64) int64 {
	if n == 0 {
		return d
	}
	return n
}

// ingressClassName is the class chart 2.15.0 names, that of its bundled
// ingress-nginx.
const ingressClassName = "gitlab-agent-nginx"

// ingress2150 exposes a receptive agent's API.
func ingress2150(n names, v Values, labels map[string]any) Object {
	ing := newObject("networking.k8s.io/v1", "Ingress", n.full+"-ingress", n.namespace, labels)
	ann := map[string]any{}
	if v.Ingress.Provider == "nginx" {
		ann["nginx.ingress.kubernetes.io/backend-protocol"] = "GRPC"
		ann["nginx.ingress.kubernetes.io/proxy-buffering"] = "off"
		ann["nginx.ingress.kubernetes.io/custom-http-errors"] = ""
	}
	for k, val := range v.Ingress.Annotations {
		ann[k] = val
	}
	meta := ing["metadata"].(map[string]any)
	if len(ann) > 0 {
		meta["annotations"] = ann
	} else {
		meta["annotations"] = nil // the chart's empty "annotations:"
	}
	spec := map[string]any{
		"ingressClassName": ingressClassName,
		"rules": []any{map[string]any{
			"host": v.Ingress.Hostname,
			"http": map[string]any{"paths": []any{map[string]any{
				"path": "/", "pathType": "Prefix",
				"backend": map[string]any{"service": map[string]any{
					"name": n.service, "port": map[string]any{"number": orDefault(v.Service.ExternalPort, 8182)},
				}},
			}}},
		}},
	}
	if v.Config.API.TLS.Enabled && v.Ingress.TLS.Enabled {
		spec["tls"] = []any{map[string]any{"hosts": []any{v.Ingress.Hostname}, "secretName": n.secret}}
	}
	ing["spec"] = spec
	return ing
}
