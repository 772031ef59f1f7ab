package manifest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// files is a reader over in-memory files ("-" is stdin) that records what
// was read, and for what.
type files struct {
	content map[string]string
	reads   []string
}

func (f *files) read(path string, kind FileKind) ([]byte, error) {
	f.reads = append(f.reads, fmt.Sprintf("%s:%d", path, kind))
	c, ok := f.content[path]
	if !ok {
		return nil, fmt.Errorf("reading %s: no such file", path)
	}
	return []byte(c), nil
}

func ptr[T any](v T) *T { return &v }

func TestLayersInput(t *testing.T) {
	content := map[string]string{
		"a.yaml":    "replicas: 3\nconfig:\n  kasAddress: wss://a.example.com\n  secretName: from-a\nimage:\n  tag: v1.0.0\n",
		"b.yaml":    "replicas: 4\nnodeSelector:\n  disk: ssd\n",
		"ca.pem":    "PEM\n",
		"token":     "  glagent-token-0123  \n",
		"-":         "replicas: 7\n",
		"empty":     "\n",
		"two-lines": "glagent-a\nglagent-b\n",
	}
	tests := []struct {
		name    string
		agent   string
		ns      string
		layers  Layers
		check   func(t *testing.T, in Input)
		set     []string // the keys the user set
		reads   []string // path:kind, in order
		wantErr string
	}{{
		name: "nothing given: the chart's defaults",
		check: func(t *testing.T, in Input) {
			wantValues(t, in.Values.Replicas == 2 && in.Values.Chart == DefaultChartVersion && !in.NoNamespace, in)
		},
	}, {
		name:   "a namespace, and no Namespace object",
		ns:     "agents",
		layers: Layers{NoNamespace: true},
		check:  func(t *testing.T, in Input) { wantValues(t, in.Namespace == "agents" && in.NoNamespace, in) },
	}, {
		name:   "later files win, maps merge",
		layers: Layers{ValuesFiles: []string{"a.yaml", "b.yaml"}},
		check: func(t *testing.T, in Input) {
			wantValues(t, in.Values.Replicas == 4 && in.Values.NodeSelector["disk"] == "ssd" && in.Values.Config.KasAddress == "wss://a.example.com", in)
		},
		set:   []string{"config.kasAddress", "config.secretName", "image.tag", "nodeSelector.disk", "replicas"},
		reads: []string{"a.yaml:0", "b.yaml:0"},
	}, {
		name:   "--set over files, --set-file over --set",
		layers: Layers{ValuesFiles: []string{"a.yaml"}, Sets: []string{"replicas=5,config.kasCaCert=inline"}, SetFiles: []string{"config.kasCaCert=ca.pem"}},
		check: func(t *testing.T, in Input) {
			wantValues(t, in.Values.Replicas == 5 && in.Values.Config.KasCaCert == "PEM\n", in)
		},
		set:   []string{"config.kasAddress", "config.kasCaCert", "config.secretName", "image.tag", "replicas"},
		reads: []string{"a.yaml:0", "ca.pem:1"},
	}, {
		name: "the plain flags given win over every layer",
		layers: Layers{ValuesFiles: []string{"a.yaml"}, Sets: []string{"replicas=5"},
			KasAddress: ptr("wss://flag.example.com"), AgentVersion: ptr("17.3.1"), SecretName: ptr("mine"), Replicas: ptr(0)},
		check: func(t *testing.T, in Input) {
			v := in.Values
			wantValues(t, v.Replicas == 0 && v.Config.KasAddress == "wss://flag.example.com" && v.Image.Tag == "v17.3.1" && v.Config.SecretName == "mine", in)
		},
		set:   []string{"config.kasAddress", "config.secretName", "image.tag", "replicas"},
		reads: []string{"a.yaml:0"},
	}, {
		name:   "a flag not given leaves the files' value",
		layers: Layers{ValuesFiles: []string{"a.yaml"}},
		check: func(t *testing.T, in Input) {
			wantValues(t, in.Values.Replicas == 3 && in.Values.Config.SecretName == "from-a" && in.Values.Image.Tag == "v1.0.0", in)
		},
		set:   []string{"config.kasAddress", "config.secretName", "image.tag", "replicas"},
		reads: []string{"a.yaml:0"},
	}, {
		name:   "an agent version that is not a plain version stays as it is",
		layers: Layers{AgentVersion: ptr("v18.0.0-rc1")},
		check:  func(t *testing.T, in Input) { wantValues(t, in.Values.Image.Tag == "v18.0.0-rc1", in) },
		set:    []string{"image.tag"},
	}, {
		name:   "the token, read last, without the spaces around it",
		layers: Layers{TokenFile: "token", ValuesFiles: []string{"b.yaml"}, SetFiles: []string{"config.kasCaCert=ca.pem"}},
		check:  func(t *testing.T, in Input) { wantValues(t, in.Values.Config.Token == "glagent-token-0123", in) },
		set:    []string{"config.kasCaCert", "config.token", "nodeSelector.disk", "replicas"},
		reads:  []string{"b.yaml:0", "ca.pem:1", "token:2"},
	}, {
		name:   "stdin for a values file",
		layers: Layers{ValuesFiles: []string{"a.yaml", "-"}},
		check:  func(t *testing.T, in Input) { wantValues(t, in.Values.Replicas == 7, in) },
		set:    []string{"config.kasAddress", "config.secretName", "image.tag", "replicas"},
		reads:  []string{"a.yaml:0", "-:0"},
	}, {
		name:   "an older chart",
		layers: Layers{ChartVersion: "2.6.2"},
		check:  func(t *testing.T, in Input) { wantValues(t, in.Values.Chart == "2.6.2", in) },
	}, {
		name:    "a bad name, before anything is read",
		agent:   "Prod_EU",
		layers:  Layers{ValuesFiles: []string{"a.yaml"}, TokenFile: "-"},
		wantErr: `invalid agent name "Prod_EU"`,
	}, {
		name:    "the token and a values file on stdin",
		layers:  Layers{TokenFile: "-", ValuesFiles: []string{"a.yaml", "-"}},
		wantErr: "--token-file - and -f - both read stdin: give one of them a file",
		reads:   []string{"a.yaml:0"},
	}, {
		name:    "a values file and a --set-file on stdin",
		layers:  Layers{ValuesFiles: []string{"-"}, SetFiles: []string{"config.kasCaCert=-"}},
		wantErr: "-f - and --set-file - both read stdin",
		reads:   []string{"-:0"},
	}, {
		name:    "a file that cannot be read",
		layers:  Layers{ValuesFiles: []string{"a.yaml", "missing.yaml", "b.yaml"}},
		wantErr: "reading missing.yaml: no such file",
		reads:   []string{"a.yaml:0", "missing.yaml:0"},
	}, {
		name:    "a values file that is not values",
		layers:  Layers{ValuesFiles: []string{"token"}},
		wantErr: "token: want a map of values at the top level",
		reads:   []string{"token:0"},
	}, {
		name:    "a bad --set, before any --set-file is read",
		layers:  Layers{Sets: []string{"replicas"}, SetFiles: []string{"config.kasCaCert=ca.pem"}},
		wantErr: "--set replicas: want key=value",
	}, {
		name:    "an unknown chart",
		layers:  Layers{ChartVersion: "0.1.0"},
		wantErr: "0.1.0",
	}, {
		name:    "negative replicas",
		layers:  Layers{Replicas: ptr(-1), TokenFile: "token"},
		wantErr: "--replicas must be 0 or more",
	}, {
		name:    "an empty token",
		layers:  Layers{TokenFile: "empty"},
		wantErr: "the token in empty is empty",
		reads:   []string{"empty:2"},
	}, {
		name:    "a token with spaces, from stdin",
		layers:  Layers{TokenFile: "-"},
		wantErr: "the token in stdin has spaces or several lines",
		reads:   []string{"-:2"},
	}, {
		name:    "a token of two lines",
		layers:  Layers{TokenFile: "two-lines"},
		wantErr: "the token in two-lines has spaces or several lines: it must be the token alone",
		reads:   []string{"two-lines:2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &files{content: maps.Clone(content)}
			agent := tt.agent
			if agent == "" {
				agent = "prod"
			}
			in, err := tt.layers.Input(agent, tt.ns, f.read)
			if !slices.Equal(f.reads, tt.reads) {
				t.Errorf("reads %q, want %q", f.reads, tt.reads)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "glagent-") {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.Name != "prod" || (tt.ns == "" && in.Namespace != "gitlab-agent-prod") {
				t.Errorf("release %s in %s", in.Name, in.Namespace)
			}
			if got := slices.Sorted(maps.Keys(in.Set)); !slices.Equal(got, tt.set) {
				t.Errorf("set %q, want %q", got, tt.set)
			}
			if tt.check != nil {
				tt.check(t, in)
			}
		})
	}
}

func wantValues(t *testing.T, ok bool, in Input) {
	t.Helper()
	if !ok {
		t.Errorf("values %+v", in.Values)
	}
}

func TestAgentTag(t *testing.T) {
	for v, want := range map[string]string{"17.3.1": "v17.3.1", "v17.3.1": "v17.3.1", "17.3.1-ee": "v17.3.1-ee", "latest": "latest", "17.3": "17.3", "": ""} {
		if got := agentTag(v); got != want {
			t.Errorf("agentTag(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestLayersInHelmsOrder: values files, then --set-json, --set,
// --set-string and --set-file, each winning over those before, as Helm's
// MergeValues layers them.
func TestLayersInHelmsOrder(t *testing.T) {
	f := &files{content: map[string]string{"v.yaml": "replicas: 1\nimage:\n  tag: file\nextraArgs: [a, b]\n", "tag": "from-file"}}
	in, err := Layers{
		ValuesFiles: []string{"v.yaml"},
		SetJSON:     []string{`replicas=2,image.tag="json",extraArgs[1]="json"`},
		Sets:        []string{"replicas=3,image.tag=set"},
		SetStrings:  []string{"image.tag=string"},
	}.Input("prod", "", f.read)
	if err != nil || in.Values.Replicas != 3 || in.Values.Image.Tag != "string" || strings.Join(in.Values.ExtraArgs, ",") != "a,json" {
		t.Fatalf("%+v %v", in.Values, err)
	}
	in, err = Layers{SetStrings: []string{"image.tag=string"}, SetFiles: []string{"image.tag=tag"}}.Input("prod", "", f.read)
	if err != nil || in.Values.Image.Tag != "from-file" {
		t.Fatalf("--set-file after --set-string: %q %v", in.Values.Image.Tag, err)
	}
	for path, want := range map[string]string{
		"https://u:p@example.com/v.yaml?private_token=s3cr3t#x": "https://example.com/v.yaml",
		"values.yaml": "values.yaml",
	} {
		if got := ValuesFileName(path); got != want {
			t.Errorf("ValuesFileName(%s) = %q, want %q", path, got, want)
		}
	}
}
