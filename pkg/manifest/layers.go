package manifest

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
)

// Layers are the chart's values as a command line gives them, files still
// unread: values files, --set and --set-file, layered as Helm layers them,
// then the plain flags and the token file, which win over all of them.
type Layers struct {
	// ChartVersion is the chart whose defaults and keys to follow ("":
	// DefaultChartVersion).
	ChartVersion string
	// ValuesFiles are values files (-f), later ones win; "-" is stdin.
	ValuesFiles []string
	// SetJSON, Sets, SetStrings and SetFiles are --set-json, --set,
	// --set-string and --set-file expressions, in order.
	SetJSON    []string
	Sets       []string
	SetStrings []string
	SetFiles   []string
	// The plain flags: nil when not given, so that a flag's default never
	// overrides a values file.
	KasAddress   *string // config.kasAddress
	AgentVersion *string // image.tag; "17.3.1" is agentk's "v17.3.1"
	SecretName   *string // config.secretName
	Replicas     *int    // replicas
	// TokenFile holds the agent token (config.token); "-" is stdin.
	TokenFile string
	// NoNamespace leaves the Namespace object out.
	NoNamespace bool
}

// FileKind is what a file is read for, so that a reader can bound it.
type FileKind int

// The files Layers name.
const (
	ValuesFileKind FileKind = iota // a values file (-f)
	SetFileKind                    // a --set-file value
	TokenFileKind                  // the agent token (--token-file)
)

// ReadFile reads the file at path for kind; "-" is stdin. The caller bounds
// the read and ends it when it should.
type ReadFile func(path string, kind FileKind) ([]byte, error)

// Input layers l into the render input of agent name in namespace ns
// ("": DefaultNamespace): the values files in order, then --set-json, --set,
// --set-string and --set-file, as Helm layers them, over the chart's
// defaults; then the plain flags given; then
// the token. Input.Set lists the keys the user set. Stdin can be read once:
// a second file named "-" is an error before anything is read from it.
func (l Layers) Input(name, ns string, read ReadFile) (Input, error) {
	if err := agentname.Validate(name); err != nil {
		return Input{}, err
	}
	if ns == "" {
		ns = DefaultNamespace(name)
	}
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
	// The token is read last, but claims stdin first.
	if err := claim(l.TokenFile, "--token-file"); err != nil {
		return Input{}, err
	}
	var sources []Source
	for _, path := range l.ValuesFiles {
		if err := claim(path, "-f"); err != nil {
			return Input{}, err
		}
		data, err := read(path, ValuesFileKind)
		if err != nil {
			return Input{}, err
		}
		s, err := ParseValuesFile(ValuesFileName(path), data)
		if err != nil {
			return Input{}, err
		}
		sources = append(sources, s)
	}
	for _, set := range []struct {
		exprs []string
		parse func(string) (Source, error)
	}{{l.SetJSON, ParseSetJSON}, {l.Sets, ParseSet}, {l.SetStrings, ParseSetString}} {
		for _, expr := range set.exprs {
			s, err := set.parse(expr)
			if err != nil {
				return Input{}, err
			}
			sources = append(sources, s)
		}
	}
	for _, expr := range l.SetFiles {
		s, err := ParseSetFile(expr, func(path string) ([]byte, error) {
			if err := claim(path, "--set-file"); err != nil {
				return nil, err
			}
			return read(path, SetFileKind)
		})
		if err != nil {
			return Input{}, err
		}
		sources = append(sources, s)
	}
	var token string // read once the values are known good
	relayer := func(chart string) (Values, Keys, error) { return l.values(chart, sources, token) }
	values, set, err := relayer(l.ChartVersion)
	if err != nil {
		return Input{}, err
	}
	if l.TokenFile != "" {
		data, err := read(l.TokenFile, TokenFileKind)
		if err != nil {
			return Input{}, err
		}
		if token, err = tokenOf(l.TokenFile, data); err != nil {
			return Input{}, err
		}
		values.Config.Token, set["config.token"] = token, true
	}
	return Input{Name: name, Namespace: ns, NoNamespace: l.NoNamespace, Values: values, Set: set,
		ChartAsked: l.ChartVersion != "", relayer: relayer}, nil
}

// values layers the parsed sources over chart's defaults, then the plain
// flags and the token.
func (l Layers) values(chart string, sources []Source, token string) (Values, Keys, error) {
	values, err := LoadChart(chart, sources...)
	if err != nil {
		return Values{}, nil, err
	}
	set := SetKeys(sources...)
	if l.KasAddress != nil {
		values.Config.KasAddress, set[KeyKasAddress] = *l.KasAddress, true
	}
	if l.AgentVersion != nil {
		values.Image.Tag, set[KeyImageTag] = agentTag(*l.AgentVersion), true
	}
	if l.SecretName != nil {
		values.Config.SecretName, set["config.secretName"] = *l.SecretName, true
	}
	if l.Replicas != nil {
		if *l.Replicas < 0 {
			return Values{}, nil, fmt.Errorf("--replicas must be 0 or more")
		}
		values.Replicas, set["replicas"] = int64(*l.Replicas), true
	}
	if token != "" {
		values.Config.Token, set["config.token"] = token, true
	}
	return values, set, nil
}

// InChart is in with the same values (files, --set, flags, token) layered
// over chart version's defaults instead, for an action that keeps the
// layout an agent runs with. An Input that Layers did not make has no
// values to layer again: it is an error, unless it is for that chart.
func (in Input) InChart(version string) (Input, error) {
	c, err := LookupChart(version)
	if err != nil {
		return in, err
	}
	if c == chartOf(in.Values) {
		return in, nil
	}
	if in.relayer == nil {
		return in, fmt.Errorf("the values for chart %s cannot be layered again for chart %s", chartOf(in.Values).Version, c.Version)
	}
	in.Values, in.Set, err = in.relayer(c.Version)
	return in, err
}

// ValuesFileName is how messages name the values file at path: a URL
// without its credentials, query and fragment (a token may be there).
func ValuesFileName(path string) string {
	if !strings.Contains(path, "://") {
		return path
	}
	u, err := url.Parse(path)
	if err != nil {
		return "a values file URL"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

var semverRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+`)

// agentTag is agentk's image tag for a version: "17.3.1" is "v17.3.1".
func agentTag(v string) string {
	if semverRE.MatchString(v) {
		return "v" + v
	}
	return v
}

// tokenOf is the token in the file at path: the data without the spaces
// around it, never echoed.
func tokenOf(path string, data []byte) (string, error) {
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
