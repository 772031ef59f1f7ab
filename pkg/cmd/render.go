package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
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
	Sets            []string
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
	fl.StringArrayVarP(&f.ValuesFiles, "values", valuesShorthand, nil, "a values file with the Helm chart's keys (repeatable; later files win)")
	fl.StringArrayVar(&f.Sets, "set", nil, "set a chart value, key=value with dotted keys as in Helm (repeatable; wins over -f)")
	fl.StringArrayVar(&f.SetFiles, "set-file", nil, "set a chart value to a file's content, key=FILE as in Helm, e.g. config.kasCaCert=ca.pem (repeatable; wins over --set)")
	fl.StringVar(&f.KasAddress, "kas-address", "", "the KAS address agentk dials (config.kasAddress; the chart's default is wss://kas.gitlab.com)")
	fl.StringVar(&f.AgentVersion, "agent-version", "", "agentk image tag (image.tag), e.g. v18.0.0 (default: the chart version's agentk, "+defaultChart().AppVersion+" for "+manifest.DefaultChartVersion+")")
	fl.StringVar(&f.ChartVersion, "chart-version", manifest.DefaultChartVersion, "the gitlab-agent chart version whose objects and values to follow: "+manifest.ChartVersions())
	fl.StringVar(&f.TokenFile, "token-file", "", "read the agent token from FILE, or '-' for stdin, and embed it in a Secret")
	fl.StringVar(&f.SecretName, "secret-name", "", "mount this existing Secret (key 'token') instead of creating one (config.secretName)")
	fl.IntVar(&f.Replicas, "replicas", 2, "number of agentk replicas (the chart's replicas)")
	fl.BoolVar(&f.CreateNamespace, "create-namespace", true, "include the Namespace object")
}

// RenderOptions prints the agentk manifests.
type RenderOptions struct {
	Flags     RenderFlags
	Output    *OutputFlags
	Namespace string

	input manifest.Input
	genericiooptions.IOStreams
}

// NewCmdRender builds `render NAME`.
func NewCmdRender(streams genericiooptions.IOStreams) *cobra.Command {
	o := &RenderOptions{Output: NewOutputFlags("yaml", "json"), IOStreams: streams}
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
	o.input, err = o.Flags.Input(cmd.Context(), args[0], o.Namespace, o.In)
	return err
}

// Input reads values files, --set and the plain flags into a render input
// for agent name in namespace ns (the default namespace when empty). Reads
// are capped and end when ctx does.
func (f *RenderFlags) Input(ctx context.Context, name, ns string, stdin io.Reader) (manifest.Input, error) {
	if err := agentname.Validate(name); err != nil {
		return manifest.Input{}, err
	}
	if ns == "" {
		ns = manifest.DefaultNamespace(name)
	}
	// Stdin can be read once: the second flag that names it is an error.
	stdinBy := ""
	claim := func(path, what string) error {
		if path != "-" {
			return nil
		}
		if stdinBy != "" {
			return fmt.Errorf("%s - and %s - both read stdin: give one of them a file", stdinBy, what)
		}
		stdinBy = what
		return nil
	}
	if err := claim(f.TokenFile, "--token-file"); err != nil {
		return manifest.Input{}, err
	}
	var sources []manifest.Source
	for _, path := range f.ValuesFiles {
		if err := claim(path, "-f"); err != nil {
			return manifest.Input{}, err
		}
		data, err := input.ReadFile(ctx, path, stdin, input.MaxValues, "values file")
		if err != nil {
			return manifest.Input{}, err
		}
		s, err := manifest.ParseValuesFile(path, data)
		if err != nil {
			return manifest.Input{}, err
		}
		sources = append(sources, s)
	}
	for _, expr := range f.Sets {
		s, err := manifest.ParseSet(expr)
		if err != nil {
			return manifest.Input{}, err
		}
		sources = append(sources, s)
	}
	for _, expr := range f.SetFiles {
		s, err := manifest.ParseSetFile(expr, func(path string) ([]byte, error) {
			if err := claim(path, "--set-file"); err != nil {
				return nil, err
			}
			return input.ReadFile(ctx, path, stdin, input.MaxValues, "--set-file")
		})
		if err != nil {
			return manifest.Input{}, err
		}
		sources = append(sources, s)
	}
	values, err := manifest.LoadChart(f.ChartVersion, sources...)
	if err != nil {
		return manifest.Input{}, err
	}
	set := manifest.SetKeys(sources...)
	if f.isSet("kas-address") {
		values.Config.KasAddress, set[manifest.KeyKasAddress] = f.KasAddress, true
	}
	if f.isSet("agent-version") {
		values.Image.Tag, set[manifest.KeyImageTag] = normalizeAgentVersion(f.AgentVersion), true
	}
	if f.isSet("secret-name") {
		values.Config.SecretName, set["config.secretName"] = f.SecretName, true
	}
	if f.isSet("replicas") {
		if f.Replicas < 0 {
			return manifest.Input{}, fmt.Errorf("--replicas must be 0 or more")
		}
		values.Replicas, set["replicas"] = int64(f.Replicas), true
	}
	if f.TokenFile != "" {
		token, err := readToken(ctx, f.TokenFile, stdin)
		if err != nil {
			return manifest.Input{}, err
		}
		values.Config.Token, set["config.token"] = token, true
	}
	return manifest.Input{Name: name, Namespace: ns, NoNamespace: !f.CreateNamespace, Values: values, Set: set}, nil
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
	var buf bytes.Buffer
	if o.Output.Format == "json" {
		err = manifest.WriteJSON(&buf, out.Objects)
	} else {
		err = manifest.WriteYAML(&buf, out.Objects)
	}
	if err != nil {
		return err
	}
	if len(out.Embedded) > 0 {
		fmt.Fprintf(o.ErrOut, "warning: the output holds credentials in Secret %s; keep it out of logs and version control\n", strings.Join(out.Embedded, ", "))
	}
	_, err = o.Out.Write(buf.Bytes())
	return err
}

var semverRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+`)

// normalizeAgentVersion accepts "17.3.1" for agentk's tag "v17.3.1".
func normalizeAgentVersion(v string) string {
	if semverRE.MatchString(v) {
		return "v" + v
	}
	return v
}

// readToken reads a token from a file or stdin without ever echoing it.
func readToken(ctx context.Context, path string, stdin io.Reader) (string, error) {
	data, err := input.ReadFile(ctx, path, stdin, input.MaxToken, "the token")
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	where := path
	if path == "-" {
		where = "stdin"
	}
	if token == "" {
		return "", fmt.Errorf("the token in %s is empty", where)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("the token in %s has spaces or several lines: it must be the token alone", where)
	}
	return token, nil
}

// exactArgs is cobra.ExactArgs with a message that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s needs %s, got %d argument(s) (see '%s --help')", cmd.CommandPath(), names, len(args), cmd.CommandPath())
		}
		return nil
	}
}
