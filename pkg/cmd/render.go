package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// RenderFlags are the flags that choose what to render; install, upgrade and
// diff take the same ones.
type RenderFlags struct {
	// changed reports whether the user gave a flag, so that a flag's default
	// never overrides a values file.
	changed         func(name string) bool
	ValuesFiles     []string
	SetJSON         []string
	Sets            []string
	SetStrings      []string
	SetFiles        []string
	KasAddress      string
	AgentVersion    string
	TokenFile       string
	SecretName      string
	Replicas        int
	CreateNamespace bool
	ChartVersion    string
}

// AddFlags binds the render flags to cmd. Commands that read manifests with
// -f (diff) take values files as --values only.
func (f *RenderFlags) AddFlags(cmd *cobra.Command, valuesShorthand string) {
	fl := cmd.Flags()
	f.changed = func(name string) bool { return fl.Changed(name) }
	fl.StringArrayVarP(&f.ValuesFiles, "values", valuesShorthand, nil, "a values file with the Helm chart's keys, or its https:// URL (repeatable; later files win)")
	fl.StringArrayVar(&f.SetJSON, "set-json", nil, "set chart values to JSON, key=JSON with dotted keys as in Helm, e.g. tolerations='[{\"operator\":\"Exists\"}]' (repeatable; wins over -f)")
	fl.StringArrayVar(&f.Sets, "set", nil, "set a chart value, key=value with dotted keys as in Helm (repeatable; wins over -f and --set-json)")
	fl.StringArrayVar(&f.SetStrings, "set-string", nil, "set a chart value to a string, key=value as --set takes it (repeatable; wins over --set)")
	fl.StringArrayVar(&f.SetFiles, "set-file", nil, "set a chart value to a file's content, key=FILE as in Helm, e.g. config.kasCaCert=ca.pem (repeatable; wins over --set-string)")
	fl.StringVar(&f.KasAddress, "kas-address", "", "the KAS address agentk dials (config.kasAddress; the chart's default is wss://kas.gitlab.com)")
	fl.StringVar(&f.AgentVersion, "agent-version", "", "agentk image tag (image.tag), e.g. v18.0.0 (default: install: KAS's version from GitLab; upgrade: KAS's when GitLab answers, else as it runs; token rotate, diff NAME: as it runs; render: the chart version's agentk, "+defaultChart().AppVersion+" for "+manifest.DefaultChartVersion+")")
	fl.StringVar(&f.ChartVersion, "chart-version", manifest.DefaultChartVersion, "the gitlab-agent chart version whose objects and values to follow: "+manifest.ChartVersions()+" (token rotate keeps the layout the agent runs unless given)")
	fl.StringVar(&f.TokenFile, "token-file", "", "read the agent token from FILE, or '-' for stdin, and embed it in a Secret")
	fl.StringVar(&f.SecretName, "secret-name", "", "mount this existing Secret (key 'token') instead of creating one (config.secretName)")
	fl.IntVar(&f.Replicas, "replicas", 2, "number of agentk replicas (the chart's replicas)")
	fl.BoolVar(&f.CreateNamespace, "create-namespace", true, "include the Namespace object")
}

// RenderOptions prints the agentk manifests.
type RenderOptions struct {
	Factory   Factory
	Flags     RenderFlags
	Output    *OutputFlags
	Namespace string

	input manifest.Input
	genericiooptions.IOStreams
}

// NewCmdRender builds `render NAME`.
func NewCmdRender(f Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RenderOptions{Factory: f, Output: NewOutputFlags("yaml", "json"), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "render NAME",
		Short: "Print the agentk manifests for an agent, with no cluster and no GitLab",
		Long: `Print the Kubernetes objects that run agentk for the agent NAME.

The objects equal what the official gitlab-agent Helm chart ` + manifest.DefaultChartVersion + ` makes for
release NAME in the same namespace with the same values (-f takes the chart's
values.yaml keys), so a chart user can switch without rewriting values and an
install adopts the chart's objects. The differences: no helm.sh/chart label,
app.kubernetes.io/managed-by: ` + manifest.ManagedBy + `, every namespaced object names
its namespace, a Namespace object comes first, and agentk's telemetry names
this plugin as the installation method.

--chart-version 2.6.2 follows the older chart (agentk v17.3.1), as this
plugin rendered it before: diff NAME --chart-version 2.6.2 against the default
shows what moving an agent to the newer layout changes. A receptive agent
(config.receptive.enabled) gets a random private-api-jwt at each render;
install, upgrade and diff NAME keep the one its Secret holds.

Without --token-file (or config.token) no Secret is rendered: the Deployment
mounts the Secret <NAME>-gitlab-agent-token (or --secret-name), which must
exist. With a token, it is embedded in a Secret and a warning says so.`,
		Example: `  # The defaults, into namespace gitlab-agent-prod-eu
  kubectl gitlab-agent render prod-eu

  # A self-managed KAS, the token from a file, applied at once
  kubectl gitlab-agent render prod-eu --kas-address wss://gitlab.example.com/-/kubernetes-agent/ \
      --token-file token.txt | kubectl apply --server-side -f -

  # Values written for the Helm chart
  kubectl gitlab-agent render prod-eu -n gitlab-agent -f values.yaml --set replicas=3`,
		Args: exactArgs(1, "NAME"),
		RunE: runOptions(o),
	}
	o.Flags.AddFlags(cmd, "f")
	o.Output.AddFlags(cmd)
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "the namespace of the agent's objects (default gitlab-agent-NAME)")
	return cmd
}

// Complete reads the values files, the token and the flags into the input.
func (o *RenderOptions) Complete(cmd *cobra.Command, args []string) error {
	if err := o.Output.Validate(); err != nil {
		return err
	}
	var err error
	o.input, err = o.Flags.Input(cmd.Context(), o.Factory, args[0], o.Namespace, o.In)
	return err
}

// Input reads values files, --set and the plain flags into a render input
// for agent name in namespace ns (the default namespace when empty). Reads
// are capped and end when ctx does.
func (f *RenderFlags) Input(ctx context.Context, fac Factory, name, ns string, stdin io.Reader) (manifest.Input, error) {
	return f.layers().Input(name, ns, func(path string, kind manifest.FileKind) ([]byte, error) {
		switch {
		case kind == manifest.ValuesFileKind && strings.Contains(path, "://"):
			return f.fetchValues(ctx, fac, path)
		case kind == manifest.TokenFileKind:
			return input.ReadFile(ctx, path, stdin, input.MaxToken, "the token")
		case kind == manifest.SetFileKind:
			return input.ReadFile(ctx, path, stdin, input.MaxValues, "--set-file")
		default:
			return input.ReadFile(ctx, path, stdin, input.MaxValues, "values file")
		}
	})
}

// valuesFetchTimeout bounds reading a values file from a URL.
const valuesFetchTimeout = 30 * time.Second

// fetchValues reads the values file at rawURL as Helm's -f does, with only
// https (a file read over plain http could be changed on the way), within
// input.MaxValues and valuesFetchTimeout, and following redirects only to
// https.
func (f *RenderFlags) fetchValues(ctx context.Context, fac Factory, rawURL string) ([]byte, error) {
	name := manifest.ValuesFileName(rawURL)
	u, err := neturl.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-f %s: not a URL", name)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("-f %s: only https URLs are read, or a local file", name)
	}
	c := *fac.HTTPClient()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("a redirect to %s, not https", req.URL.Scheme)
		}
		if len(via) >= 5 {
			return fmt.Errorf("more than 5 redirects")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, valuesFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("-f %s: not a URL", name)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text holds the whole URL
		}
		return nil, fmt.Errorf("-f %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("-f %s: the server answered %s", name, resp.Status)
	}
	return input.ReadAll(ctx, resp.Body, input.MaxValues, "values file "+name)
}

// layers are the flags as given: a plain flag the user did not give is nil.
func (f *RenderFlags) layers() manifest.Layers {
	l := manifest.Layers{ValuesFiles: f.ValuesFiles, SetJSON: f.SetJSON, Sets: f.Sets,
		SetStrings: f.SetStrings, SetFiles: f.SetFiles, TokenFile: f.TokenFile, NoNamespace: !f.CreateNamespace}
	if f.isSet("chart-version") { // else "": the default, which rotate may replace with the running layout's
		l.ChartVersion = f.ChartVersion
	}
	if f.isSet("kas-address") {
		l.KasAddress = &f.KasAddress
	}
	if f.isSet("agent-version") {
		l.AgentVersion = &f.AgentVersion
	}
	if f.isSet("secret-name") {
		l.SecretName = &f.SecretName
	}
	if f.isSet("replicas") {
		l.Replicas = &f.Replicas
	}
	return l
}

func defaultChart() *manifest.Chart {
	c, _ := manifest.LookupChart("")
	return c
}

func (f *RenderFlags) isSet(name string) bool {
	return f.changed != nil && f.changed(name)
}

// Validate checks the input.
func (o *RenderOptions) Validate() error {
	if o.input.Values.Config.KasAddress == "" {
		return fmt.Errorf("no KAS address: set --kas-address (e.g. wss://kas.gitlab.com)")
	}
	return nil
}

// Run renders and prints the objects. Nothing reaches stdout unless the whole
// render succeeded.
func (o *RenderOptions) Run(_ context.Context) error {
	out, err := manifest.Render(o.input)
	if err != nil {
		return err
	}
	if len(out.Embedded) > 0 {
		fmt.Fprintf(o.ErrOut, "warning: the output holds credentials in Secret %s; keep it out of logs and version control\n", strings.Join(out.Embedded, ", "))
	}
	if p := manifest.KASAddressProblem(o.input.Values.Config.KasAddress); p != "" {
		fmt.Fprintf(o.ErrOut, "warning: %s\n", p)
	}
	if n := manifest.MissingTokenNote(o.input); n != "" {
		fmt.Fprintf(o.ErrOut, "note: %s\n", n)
	}
	return o.Output.Print(o.Out, true, renderResult(out.Objects))
}

// renderResult is what render prints: the objects, as a v1 List for
// -o json (kubectl get -o json's shape) and as a stream of YAML documents
// for -o yaml (what kubectl apply -f reads).
type renderResult []manifest.Object

// WriteJSON writes the objects as a v1 List.
func (r renderResult) WriteJSON(w io.Writer) error { return manifest.WriteJSON(w, r) }

// WriteYAML writes the objects as YAML documents.
func (r renderResult) WriteYAML(w io.Writer) error { return manifest.WriteYAML(w, r) }

// exactArgs is cobra.ExactArgs with a message that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s needs %s, got %d argument(s) (see '%s --help')", cmd.CommandPath(), names, len(args), cmd.CommandPath())
		}
		return nil
	}
}
