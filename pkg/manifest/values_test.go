package manifest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"wrong type", "replicas: two", `values.yaml: replicas: want an integer, got "two"`},
		{"unknown key", "replica: 3", `values.yaml: replica: unknown key (did you mean "replicas"?)`},
		{"unknown nested key", "config:\n  kasAdress: x", `values.yaml: config.kasAdress: unknown key (did you mean "kasAddress"?)`},
		{"unknown key, no close match", "rbac:\n  enabled: true", `values.yaml: rbac.enabled: unknown key (known keys here: create, useExistingRole)`},
		{"bool as string", "rbac:\n  create: \"yes\"", `values.yaml: rbac.create: want true or false, got "yes"`},
		{"annotation number", "podAnnotations:\n  a: 1", `values.yaml: podAnnotations.a: want a string, got 1 (quote it)`},
		{"enum", "image:\n  pullPolicy: Sometimes", `values.yaml: image.pullPolicy: want one of Always, IfNotPresent, Never, got "Sometimes"`},
		{"map wanted", "config: wss://x", `values.yaml: config: want a map, got a string`},
		{"kubernetes type field", "tolerations:\n- efect: NoSchedule", `values.yaml: tolerations[0].efect: unknown field`},
		{"kubernetes type", "resources:\n  limits: 1", `values.yaml: resources:`},
		{"percent", "maxSurge: 25", ``},
		// Quoted numbers render as the numbers (the chart writes these
		// values unquoted), as with Helm.
		{"quoted count", `replicas: "3"`, ``},
		{"quoted surge", `maxSurge: "1"`, ``},
		{"quoted float", `replicas: "3.5"`, `values.yaml: replicas: want an integer, got "3.5"`},
		// The chart tests this one with "if": the string "0" would render
		// where the number 0 does not.
		{"quoted nullable", `revisionHistoryLimit: "0"`, `values.yaml: revisionHistoryLimit: want an integer, got "0"`},
		{"bad percent", "maxSurge: lots", `values.yaml: maxSurge: want an integer or a percentage such as "25%", got "lots"`},
		{"null count", "replicas: null", `values.yaml: replicas: want an integer, got null`},
		{"bad yaml", "replicas: [", `values.yaml: invalid YAML:`},
		{"top-level list", "- a", `values.yaml: want a map of values at the top level, got a list`},
		{"duplicate key", "replicas: 1\nreplicas: 2", `values.yaml: invalid YAML:`},
		{"string list", "extraArgs: [1]", `values.yaml: extraArgs[0]: want a string, got 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := ParseValuesFile("values.yaml", []byte(tt.file))
			if err == nil {
				_, err = Load(src)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

// TestNullThenAMapKeepsTheDefaults: as Helm, the user's layers are merged
// first and then over the chart's defaults; a null in an earlier layer that
// a later layer replaces with a map does not remove the defaults (the chart's
// Prometheus annotations stay beside the new one).
func TestNullThenAMapKeepsTheDefaults(t *testing.T) {
	a, _ := ParseValuesFile("a.yaml", []byte("podAnnotations: null\n"))
	b, _ := ParseValuesFile("b.yaml", []byte("podAnnotations:\n  team: x\n"))
	s1, _ := ParseSet("podAnnotations=null")
	s2, _ := ParseSet("podAnnotations.team=x")
	want := map[string]string{"team": "x", "prometheus.io/scrape": "true", "prometheus.io/path": "/metrics", "prometheus.io/port": "8080"}
	for name, layers := range map[string][]Source{"files": {a, b}, "--set": {s1, s2}} {
		v, err := Load(layers...)
		if err != nil || !reflect.DeepEqual(v.PodAnnotations, want) {
			t.Errorf("%s: %v %v, want %v", name, v.PodAnnotations, err, want)
		}
	}
	// The null alone still removes them.
	if v, err := Load(a); err != nil || len(v.PodAnnotations) != 0 {
		t.Errorf("null alone: %v %v", v.PodAnnotations, err)
	}
}

// TestSetIndexesTheListBeforeIt: as Helm parses --set into the values the
// files gave, an index changes one element of a file's list and keeps the
// others (an element that is a map gains the keys set); without a file, the
// list is what --set makes.
func TestSetIndexesTheListBeforeIt(t *testing.T) {
	f, err := ParseValuesFile("v.yaml", []byte("extraArgs: [--log-level=debug, --foo]\ntolerations: [{key: a, operator: Exists}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSet("extraArgs[1]=--bar,tolerations[0].effect=NoSchedule")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Load(f, s)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.ExtraArgs, []string{"--log-level=debug", "--bar"}) {
		t.Errorf("extraArgs %q", v.ExtraArgs)
	}
	want := []any{map[string]any{"key": "a", "operator": "Exists", "effect": "NoSchedule"}}
	if !reflect.DeepEqual(v.Tolerations, want) {
		t.Errorf("tolerations %+v, want %+v", v.Tolerations, want)
	}
	// The file's own values are as they were: a second load without the
	// --set layer sees none of it.
	if v, err := Load(f); err != nil || len(v.Tolerations) != 1 || len(v.Tolerations[0].(map[string]any)) != 2 {
		t.Errorf("the file's tolerations after a load with --set: %+v %v", v.Tolerations, err)
	}
	// A whole list given with --set replaces the file's.
	s, _ = ParseSet("extraArgs={--only}")
	if v, err := Load(f, s); err != nil || !reflect.DeepEqual(v.ExtraArgs, []string{"--only"}) {
		t.Errorf("a list replaced: %q %v", v.ExtraArgs, err)
	}
}

func TestLoadMergesInOrder(t *testing.T) {
	a, err := ParseValuesFile("a.yaml", []byte("replicas: 3\npodAnnotations:\n  x: a\nconfig:\n  kasAddress: wss://a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseValuesFile("b.yaml", []byte("replicas: 4\npodAnnotations:\n  prometheus.io/scrape: null"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSet(`config.kasHeaders={h1,h2},podAnnotations.y=1,image.tag=v1.2.3`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Load(a, b, s)
	if err != nil {
		t.Fatal(err)
	}
	if v.Replicas != 4 || v.Config.KasAddress != "wss://a" || v.Image.Tag != "v1.2.3" {
		t.Errorf("got replicas=%d kas=%q tag=%q", v.Replicas, v.Config.KasAddress, v.Image.Tag)
	}
	wantAnn := map[string]string{"x": "a", "y": "1", "prometheus.io/path": "/metrics", "prometheus.io/port": "8080"}
	if !reflect.DeepEqual(v.PodAnnotations, wantAnn) {
		t.Errorf("podAnnotations = %v, want %v", v.PodAnnotations, wantAnn)
	}
	if !reflect.DeepEqual(v.Config.KasHeaders, []string{"h1", "h2"}) {
		t.Errorf("kasHeaders = %v", v.Config.KasHeaders)
	}
	if v.ServiceAccount.Create != true || v.Config.OperationalContainerScanning.Enabled != true {
		t.Errorf("defaults lost: %+v", v)
	}
}

func TestParseSet(t *testing.T) {
	tests := []struct {
		expr string
		want string // the tree as JSON
	}{
		{"replicas=3", `{"replicas":3}`},
		{"a.b=c,d=true", `{"a":{"b":"c"},"d":true}`},
		{`podAnnotations.prometheus\.io/scrape=false`, `{"podAnnotations":{"prometheus.io/scrape":false}}`},
		{"x=null", `{"x":null}`},
		{"x=007", `{"x":"007"}`},
		{"x=-5", `{"x":-5}`},
		{"list={a,b,3}", `{"list":["a","b",3]}`},
		{"t[1].key=k", `{"t":[null,{"key":"k"}]}`},
		{`v=a\,b`, `{"v":"a,b"}`},
		{"v=a=b", `{"v":"a=b"}`},
		{"v=", `{"v":""}`},
		// As Helm: an escaped comma stays in a list element, and true,
		// false and null in any case.
		{`l={a\,b,c}`, `{"l":["a,b","c"]}`},
		{`h={Cookie: a\,b,X: 1},n=2`, `{"h":["Cookie: a,b","X: 1"],"n":2}`},
		{"a=True,b=FALSE,c=NULL", `{"a":true,"b":false,"c":null}`},
		// Outside a {list}, an escaped comma is a comma, braces or not.
		{`x=--labels={a=1\,b=2}\,y`, `{"x":"--labels={a=1,b=2},y"}`},
		{`x=pre{a\,b}post`, `{"x":"pre{a,b}post"}`},
	}
	for _, tt := range tests {
		s, err := ParseSet(tt.expr)
		if err != nil {
			t.Errorf("ParseSet(%q): %v", tt.expr, err)
			continue
		}
		got, _ := json.Marshal(s.tree)
		if string(got) != tt.want {
			t.Errorf("ParseSet(%q) = %s, want %s", tt.expr, got, tt.want)
		}
	}
	for _, bad := range []string{"novalue", "=x", "a..b=1", "[0]=x"} {
		if _, err := ParseSet(bad); err == nil {
			t.Errorf("ParseSet(%q) succeeded, want an error", bad)
		}
	}
	// A typo for "=" names the key, never what follows: it may be a token.
	for expr, want := range map[string]string{
		"config.token:glagent-SECRETSECRET":  "--set config.token: want key=value; and a secret on the command line",
		"config.token glagent-SECRETSECRET":  "--set config.token: want key=value; and a secret on the command line",
		"replicas:glagent-SECRETSECRET":      "--set replicas: want key=value",
		"image.tag glagent-SECRETSECRET":     "--set image.tag: want key=value",
		"nosuchkey:glagent-SECRETSECRET":     "--set: an entry has no key=value form",
		"a=1,config.token:glagent-SECRETSEC": "--set config.token: want key=value",
	} {
		_, err := ParseSet(expr)
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("ParseSet(%q): %v, want %q and no token", expr, err, want)
		}
	}
}

// TestWrongTypesDoNotEchoSecrets: a string where a list or a map belongs
// may be a credential (a header for a proxy in front of KAS); the error names
// the key and the type, not the value. A short word typed for a number or a
// boolean is quoted.
func TestWrongTypesDoNotEchoSecrets(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"config.kasHeaders=X-Proxy-Token: s3cr3t-0123456789", "--set: config.kasHeaders: want a list of strings, got a string"},
		{"podAnnotations=glpat-s3cr3t0123456789", "--set: podAnnotations: want a map of strings, got a string"},
		{"replicas=glpat-s3cr3t0123456789", "--set: replicas: want an integer, got a string"},
		{"replicas=two", `--set: replicas: want an integer, got "two"`},
		{"rbac.create=yes", `--set: rbac.create: want true or false, got "yes"`},
	} {
		s, err := ParseSet(c.set)
		if err == nil {
			_, err = Load(s)
		}
		if err == nil || err.Error() != c.want || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("--set %s: %v, want %s", c.set, err, c.want)
		}
	}
	for _, bad := range []string{"glagent-s3cr3tTokenValue0123456789", "config.token:glagent-s3cr3t0123"} {
		_, err := ParseSetFile(bad, func(string) ([]byte, error) { return nil, nil })
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "key=FILE") {
			t.Errorf("--set-file %s: %v", bad, err)
		}
	}
}

func TestSetCoercesStrings(t *testing.T) {
	s, err := ParseSet("image.tag=17,podLabels.n=1,config.kasHeaders={1}")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Load(s)
	if err != nil {
		t.Fatal(err)
	}
	if v.Image.Tag != "17" || v.PodLabels["n"] != "1" || v.Config.KasHeaders[0] != "1" {
		t.Errorf("got %q %q %v", v.Image.Tag, v.PodLabels["n"], v.Config.KasHeaders)
	}
	s, _ = ParseSet("replicas=two")
	if _, err := Load(s); err == nil || err.Error() != `--set: replicas: want an integer, got "two"` {
		t.Errorf("error = %v", err)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		release, nameOverride, fullOverride string
		wantFull, wantDeployment            string
	}{
		{"prod", "", "", "prod-gitlab-agent", "prod-gitlab-agent-v2"},
		{"gitlab-agent", "", "", "gitlab-agent", "gitlab-agent-v2"},
		{"my-gitlab-agent-1", "", "", "my-gitlab-agent-1", "my-gitlab-agent-1-v2"},
		{"prod", "agentk", "", "prod-agentk", "prod-agentk-v2"},
		{"prod", "", "custom", "custom", "custom-v2"},
		// 62 characters: "<name>-" is cut at 63 and the '-' trimmed; the
		// Deployment keeps the '-' at character 60.
		{strings.Repeat("a", 59) + "-ab", "", "", strings.Repeat("a", 59) + "-ab", strings.Repeat("a", 59) + "--v2"},
	}
	for _, tt := range tests {
		v, _ := Load()
		v.NameOverride, v.FullnameOverride = tt.nameOverride, tt.fullOverride
		in := Input{Name: tt.release, Namespace: "ns", Values: v}
		n := computeNames(in)
		if n.full != tt.wantFull || DeploymentName(in) != tt.wantDeployment {
			t.Errorf("%q: fullname %q deployment %q, want %q %q", tt.release, n.full, DeploymentName(in), tt.wantFull, tt.wantDeployment)
		}
	}
}

func TestRenderRejects(t *testing.T) {
	v, _ := Load()
	for _, in := range []Input{
		{Name: "Prod_EU", Values: v},
		{Name: strings.Repeat("a", 64), Values: v},
		{Name: "ok", Namespace: "Bad_NS", Values: v},
	} {
		if _, err := Render(in); err == nil {
			t.Errorf("Render(%q, %q) succeeded, want an error", in.Name, in.Namespace)
		}
	}
	v.Config.Observability.TLS.Enabled = true
	v.Config.Observability.TLS.Secret.Create = true
	if _, err := Render(Input{Name: "x", Values: v}); err == nil {
		t.Error("TLS secret without cert and key rendered")
	}
}

func TestTokenOnlyInSecret(t *testing.T) {
	v, _ := Load()
	const token = "glagent-fake-secret-value-1234"
	v.Config.Token = token
	out, err := Render(Input{Name: "x", Values: v})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Embedded) != 1 || out.Embedded[0] != "gitlab-agent-x/x-gitlab-agent-token" {
		t.Errorf("Embedded = %v", out.Embedded)
	}
	var buf strings.Builder
	if err := WriteYAML(&buf, out.Objects); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), token) {
		t.Error("the token appears in clear text in the output")
	}
}

func FuzzParseSet(f *testing.F) {
	for _, s := range []string{"a=b", "a.b[0].c=1,d={x,y}", `a\.b=c\,d`, "a[3][1]=x", "=", "a=={"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := ParseSet(expr)
		if err != nil {
			return
		}
		_, _ = Load(s) // must not panic, whatever the tree
	})
}

func FuzzParseValuesFile(f *testing.F) {
	f.Add([]byte(defaults262))
	f.Add([]byte(defaults2150))
	f.Add([]byte("replicas: 2\nconfig: {token: x}\ntolerations: [{key: a}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := ParseValuesFile("v.yaml", data)
		if err != nil {
			return
		}
		v, err := Load(src)
		if err != nil {
			return
		}
		_, _ = Render(Input{Name: "fuzz", Values: v})
	})
}

func TestSetRefusesSecretsWithoutEchoingThem(t *testing.T) {
	for _, expr := range []string{
		"config.token=glagent-secret-value",
		"replicas=3,config.token=glagent-secret-value",
		"config.observability.tls.key=-----BEGIN glagent-secret-value",
	} {
		_, err := ParseSet(expr)
		if err == nil || !strings.Contains(err.Error(), "--token-file") || strings.Contains(err.Error(), "secret-value") {
			t.Errorf("ParseSet(%q): %v", expr, err)
		}
	}
	// Other errors name the key, not the value.
	for _, expr := range []string{"glagent-secret-value", "a..b=glagent-secret-value", "replicas[0]=glagent-secret-value"} {
		if _, err := ParseSet(expr); err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("ParseSet(%q) echoes the value: %v", expr, err)
		}
	}
	// A values file may carry the token, as chart users do.
	s, err := ParseValuesFile("values.yaml", []byte("config:\n  token: glagent-x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Load(s); err != nil || v.Config.Token != "glagent-x" {
		t.Fatalf("%+v %v", v.Config, err)
	}
}

func TestParseSetFile(t *testing.T) {
	files := map[string]string{"ca.pem": "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n", "a,b": "comma"}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("open %s: no such file", p)
	}
	src, err := ParseSetFile(`config.kasCaCert=ca.pem,config.kasHeaders[0]=a\,b`, read)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if v.Config.KasCaCert != files["ca.pem"] || len(v.Config.KasHeaders) != 1 || v.Config.KasHeaders[0] != "comma" {
		t.Errorf("kasCaCert %q, kasHeaders %q", v.Config.KasCaCert, v.Config.KasHeaders)
	}
	// The value is the file's text, never typed: "true" stays a string
	// where a string belongs. Where the chart writes the value unquoted (a
	// count) the text "3" renders as 3, as with Helm.
	files["t"], files["n"] = "true", "3"
	src, _ = ParseSetFile("image.tag=t,replicas=n", read)
	if v, err := Load(src); err != nil || v.Image.Tag != "true" || v.Replicas != 3 {
		t.Errorf("from files: %+v, %v", v, err)
	}
	for _, bad := range []string{"config.kasCaCert", "=ca.pem", "config.kasCaCert=", "config..x=ca.pem", "config.kasCaCert=missing"} {
		if _, err := ParseSetFile(bad, read); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestChartVersions(t *testing.T) {
	// A 2.15.0 key is refused by 2.6.2, which points at the newer chart.
	src, err := ParseValuesFile("values.yaml", []byte("config:\n  receptive:\n    enabled: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadChart("2.6.2", src); err == nil || !strings.Contains(err.Error(), "config.receptive: unknown key") || !strings.Contains(err.Error(), "--chart-version 2.15.0") {
		t.Errorf("2.6.2 with a 2.15.0 key: %v", err)
	}
	v, err := LoadChart("", src)
	if err != nil || v.Chart != DefaultChartVersion || !v.Config.Receptive.Enabled {
		t.Fatalf("default chart: %+v, %v", v.Chart, err)
	}
	// A key of a chart newer than any followed names the chart followed.
	newer, _ := ParseValuesFile("values.yaml", []byte("config:\n  someNewerThing: 1\n"))
	if _, err := Load(newer); err == nil || !strings.Contains(err.Error(), "config.someNewerThing: unknown key") || !strings.Contains(err.Error(), "chart 2.15.0, the version followed, has no such key") {
		t.Errorf("a newer key: %v", err)
	}
	if _, err := LoadChart("2.30.0"); err == nil || !strings.Contains(err.Error(), "2.6.2, 2.15.0") {
		t.Errorf("an unknown chart version: %v", err)
	}
	if c, err := LookupChart("v2.6.2"); err != nil || c.AppVersion != "v17.3.1" {
		t.Errorf("v2.6.2: %v %v", c, err)
	}
}

func TestChart2150Refuses(t *testing.T) {
	for _, tt := range []struct{ values, want string }{
		{"ingress-nginx:\n  enabled: true\n", "install ingress-nginx separately"},
		{"config:\n  receptive: {enabled: true}\n  api: {listenAddress: '8082'}\n", "config.api.listenAddress must be in the format of host:port"},
		{"config:\n  receptive: {enabled: true}\n  api: {listenAddress: ':9000'}\n", `service.internalPort "8082" must be equal to the port that is set in config.api.listenAddress "9000"`},
		{"config:\n  receptive: {enabled: true}\nservice: {privateApiPort: 9}\n", `service.privateApiPort "9" must be equal`},
	} {
		src, err := ParseValuesFile("values.yaml", []byte(tt.values))
		if err != nil {
			t.Fatal(err)
		}
		v, err := Load(src)
		if err == nil {
			_, err = Render(Input{Name: "recv", Values: v})
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.values, err, tt.want)
		}
	}
	// The subchart's own values load while it stays disabled.
	src, _ := ParseValuesFile("values.yaml", []byte("ingress-nginx:\n  enabled: false\n  controller:\n    replicaCount: 2\n"))
	if v, err := Load(src); err != nil {
		t.Errorf("ingress-nginx values: %v", err)
	} else if _, err := Render(Input{Name: "x", Values: v}); err != nil {
		t.Errorf("ingress-nginx disabled: %v", err)
	}
}

// TestPrivateAPIJWT: made as the chart makes it (randAscii 64, base64 twice
// in the Secret's data), new at each render, kept when given.
func TestPrivateAPIJWT(t *testing.T) {
	src, _ := ParseValuesFile("values.yaml", []byte("config:\n  receptive: {enabled: true}\n"))
	v, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	jwt := func(in Input) string {
		out, err := Render(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Objects {
			if o["kind"] == "Secret" {
				return o["data"].(map[string]any)[PrivateAPIJWTKey].(string)
			}
		}
		t.Fatal("no Secret")
		return ""
	}
	a, b := jwt(Input{Name: "recv", Values: v}), jwt(Input{Name: "recv", Values: v})
	if a == b {
		t.Error("two renders made the same private-api-jwt")
	}
	file, err := base64.StdEncoding.DecodeString(a) // what the Secret's data holds
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(file)) // what agentk's file holds, decoded
	if err != nil || len(raw) != 64 {
		t.Fatalf("private-api-jwt is not base64 of 64 characters: %q, %v", raw, err)
	}
	for _, c := range raw {
		if c < 32 || c > 126 {
			t.Errorf("not printable ASCII: %q", raw)
		}
	}
	secret := &corev1.Secret{Data: map[string][]byte{PrivateAPIJWTKey: file}}
	if got := jwt(Input{Name: "recv", Values: v, PrivateAPIJWT: KeptPrivateAPIJWT(secret)}); got != a {
		t.Errorf("kept %q, rendered %q", a, got)
	}
}

// TestValuesAsHelmReadsThem: a number or a boolean where the chart prints
// the value into a text (image.tag) is the text Helm prints for it, from a
// values file or --set-json; elsewhere a string is still wanted.
func TestValuesAsHelmReadsThem(t *testing.T) {
	for file, want := range map[string]string{
		"image:\n  tag: 18":       "18",
		"image:\n  tag: 17.10":    "17.1", // Helm reads 17.10 as the number 17.1
		"image:\n  tag: 1e7":      "1e+07",
		"image:\n  tag: 10000000": "1e+07",
		"image:\n  tag: true":     "true",
		"image:\n  tag: \"18\"":   "18",
	} {
		src, err := ParseValuesFile("values.yaml", []byte(file))
		if err != nil {
			t.Fatal(err)
		}
		v, err := Load(src)
		if err != nil || v.Image.Tag != want {
			t.Errorf("%q: tag %q, %v; want %q", file, v.Image.Tag, err, want)
		}
	}
	src, _ := ParseValuesFile("values.yaml", []byte("image:\n  repository: 5"))
	if _, err := Load(src); err == nil || err.Error() != "values.yaml: image.repository: want a string, got 5" {
		t.Errorf("a number where the chart does not print it: %v", err)
	}
}

func TestSetStringAndSetJSON(t *testing.T) {
	s, err := ParseSetString("image.tag=18,podLabels.n=1,replicas=3,config.kasHeaders={1,2}")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Load(s)
	if err != nil || v.Image.Tag != "18" || v.PodLabels["n"] != "1" || v.Replicas != 3 || len(v.Config.KasHeaders) != 2 {
		t.Fatalf("--set-string: %+v %v", v, err)
	}
	s, _ = ParseSetString("rbac.create=false")
	if _, err := Load(s); err == nil || err.Error() != `--set-string: rbac.create: want true or false, got "false"` {
		t.Errorf("--set-string of a boolean: %v", err)
	}
	s, err = ParseSetJSON(`tolerations=[{"operator":"Exists","effect":"NoSchedule"}], replicas=4,image.tag=18,podAnnotations={"a":"b, c"}`)
	if err != nil {
		t.Fatal(err)
	}
	v, err = Load(s)
	if err != nil || len(v.Tolerations) != 1 || v.Replicas != 4 || v.Image.Tag != "18" || v.PodAnnotations["a"] != "b, c" {
		t.Fatalf("--set-json: %+v %v", v, err)
	}
	s, err = ParseSetJSON(`{"replicas":5,"image":{"tag":"v18.0.0"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = Load(s); err != nil || v.Replicas != 5 || v.Image.Tag != "v18.0.0" {
		t.Fatalf("--set-json object: %+v %v", v, err)
	}
	for expr, want := range map[string]string{
		`config.token="glagent-s3cr3t"`:         "--set-json config.token: a secret on the command line",
		`config={"token":"glagent-s3cr3t"}`:     "--set-json config: a secret on the command line",
		`{"config":{"token":"glagent-s3cr3t"}}`: "--set-json: a secret on the command line",
		`replicas=[glagent-s3cr3t`:              "--set-json replicas: the value is not JSON",
		`replicas=3 glagent-s3cr3t`:             "--set-json replicas: want a comma after the JSON value",
		`glagent-s3cr3t`:                        "--set-json: an entry has no key=JSON form",
		`{"replicas":3} glagent-s3cr3t`:         "--set-json: the value is not one JSON object",
	} {
		_, err := ParseSetJSON(expr)
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("--set-json %s: %v, want %q", expr, err, want)
		}
	}
	if _, err := ParseSetString("config.token=glagent-s3cr3t"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("--set-string of the token: %v", err)
	}
}
