// Package fleet holds what works on many agents at once: the GitLab CI child
// pipeline that runs one command per agent.
package fleet

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
)

// MaxMatrix is the most jobs one parallel:matrix may make: GitLab refuses a
// job whose matrix makes more than 200
// (https://docs.gitlab.com/ci/yaml/#parallelmatrix).
const MaxMatrix = 200

// DefaultImage is the image of the jobs when --image is not given: the
// management project's own image with sh, kubectl and the plugin, as
// docs/ci.md builds it. The runner expands $CI_REGISTRY_IMAGE.
const DefaultImage = "$CI_REGISTRY_IMAGE/kubectl:v1"

// The variables each job of the matrix gets.
const (
	VarContext = "AGENT_CONTEXT" // path/to/project:agent, the context of GitLab's KUBECONFIG
	VarProject = "AGENT_PROJECT" // path/to/project
	VarName    = "AGENT_NAME"    // agent
)

// Placeholders are ARGS that the script replaces with the job's agent: an
// ARG exactly {agent} becomes "$AGENT_NAME", exactly {project} becomes
// "$AGENT_PROJECT" (upgrade NAME needs the agent's name).
var Placeholders = map[string]string{"{agent}": VarName, "{project}": VarProject}

// ResultFile is the artifact each job keeps: the command's -o json.
const ResultFile = "result.json"

// Target is one agent a job runs against.
type Target struct {
	Project string
	Name    string
}

// Context is the name GitLab gives the agent's context in the KUBECONFIG it
// injects into jobs: PROJECT_PATH:AGENT_NAME.
func (t Target) Context() string { return t.Project + ":" + t.Name }

// ResourceGroup is the job's resource_group for t, so that two pipelines
// never run on one agent at once. GitLab keeps a resource group only when
// its key matches the environment name rule (letters, digits, - _ / $ { } .
// and spaces, not starting or ending with /; at most 255 characters) and
// otherwise runs the job with none, silently (app/models/ci/resource_group.rb,
// lib/gitlab/ci/pipeline/seed/processable/resource_group.rb): a context's ":"
// would drop the lock, so the key is agent/PROJECT/NAME.
func (t Target) ResourceGroup() string { return "agent/" + t.Project + "/" + t.Name }

// resourceGroupTemplate is the resource_group of a matrix job: GitLab
// expands a job's variables, the matrix's included, in resource_group
// (docs/ci/variables/where_variables_can_be_used.md).
const resourceGroupTemplate = "agent/$" + VarProject + "/$" + VarName

// projectSegment is one part of a GitLab project or group path.
var projectSegment = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// ValidateProject refuses a project path GitLab would not give: each part
// letters, digits, _ . - (not first), no empty part.
func ValidateProject(p string) error {
	if p == "" {
		return errors.New("the project path is empty")
	}
	for _, s := range strings.Split(p, "/") {
		if !projectSegment.MatchString(s) || strings.HasSuffix(s, ".") {
			return fmt.Errorf("%s is not a GitLab project path", strconv.Quote(p))
		}
	}
	return nil
}

// Validate refuses a target whose project path or agent name GitLab would
// not give, or whose resource group GitLab would drop.
func (t Target) Validate() error {
	if err := ValidateProject(t.Project); err != nil {
		return err
	}
	if err := agentname.Validate(t.Name); err != nil {
		return err
	}
	if n := len(t.ResourceGroup()); n > 255 {
		return fmt.Errorf("%s: resource group %s is %d characters, GitLab takes 255", t.Context(), t.ResourceGroup(), n)
	}
	return nil
}

// ParseTarget reads PATH:NAME, as GitLab names an agent's context.
func ParseTarget(s string) (Target, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return Target{}, fmt.Errorf("%s: want PROJECT_PATH:AGENT_NAME", strconv.Quote(s))
	}
	t := Target{Project: s[:i], Name: s[i+1:]}
	if err := t.Validate(); err != nil {
		return Target{}, fmt.Errorf("%s: %w", strconv.Quote(s), err)
	}
	return t, nil
}

// ShellQuote quotes s for POSIX sh: in single quotes, each ' as '\”.
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Script is the job's one script line: the plugin with args, each quoted
// for sh (a placeholder becomes its variable in double quotes), the agent's
// context from the job's variable, -o json into ResultFile.
func Script(args []string) string {
	var b strings.Builder
	b.WriteString("kubectl gitlab-agent")
	for _, a := range args {
		b.WriteByte(' ')
		if v, ok := Placeholders[a]; ok {
			b.WriteString(`"$` + v + `"`)
		} else {
			b.WriteString(ShellQuote(a))
		}
	}
	fmt.Fprintf(&b, ` --context "$%s" -o json > %s`, VarContext, ResultFile)
	return b.String()
}

// Pipeline is a child pipeline that runs one command once per agent.
type Pipeline struct {
	// Image is every job's image.
	Image string
	// Args are the plugin's arguments, before --context and -o json.
	Args []string
	// Targets are the agents, one job each, in order.
	Targets []Target
	// Empty is what the single job of a pipeline without targets says
	// (GitLab refuses a child pipeline without jobs).
	Empty string
}

// The keys of a job, in the order they are written.
type job struct {
	Image         string     `yaml:"image"`
	Parallel      *parallel  `yaml:"parallel,omitempty"`
	ResourceGroup string     `yaml:"resource_group,omitempty"`
	Script        []string   `yaml:"script"`
	Artifacts     *artifacts `yaml:"artifacts,omitempty"`
}

type parallel struct {
	Matrix []map[string]string `yaml:"matrix"`
}

type artifacts struct {
	Paths []string `yaml:"paths"`
	When  string   `yaml:"when"`
}

// JobNames are the names of p's jobs: fleet-1, fleet-2, ... a job per
// MaxMatrix targets, or fleet-none.
func (p Pipeline) JobNames() []string {
	if len(p.Targets) == 0 {
		return []string{"fleet-none"}
	}
	n := (len(p.Targets) + MaxMatrix - 1) / MaxMatrix
	names := make([]string, n)
	for i := range names {
		names[i] = "fleet-" + strconv.Itoa(i+1)
	}
	return names
}

// YAML is p as a .gitlab-ci.yml, written by the YAML encoder from values:
// no name or argument is ever pasted into YAML text.
func (p Pipeline) YAML() ([]byte, error) {
	for _, t := range p.Targets {
		if err := t.Validate(); err != nil {
			return nil, err
		}
	}
	return p.encode()
}

// encode writes p without checking its targets.
func (p Pipeline) encode() ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(name string, j job) error {
		var v yaml.Node
		if err := v.Encode(j); err != nil {
			return err
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, &v)
		return nil
	}
	names := p.JobNames()
	if len(p.Targets) == 0 {
		if err := add(names[0], job{Image: p.Image, Script: []string{"echo " + ShellQuote(p.Empty)}}); err != nil {
			return nil, err
		}
	}
	script := Script(p.Args)
	for i, name := range names {
		if len(p.Targets) == 0 {
			break
		}
		chunk := p.Targets[i*MaxMatrix : min((i+1)*MaxMatrix, len(p.Targets))]
		m := make([]map[string]string, len(chunk))
		for k, t := range chunk {
			m[k] = map[string]string{VarContext: t.Context(), VarProject: t.Project, VarName: t.Name}
		}
		j := job{
			Image:         p.Image,
			Parallel:      &parallel{Matrix: m},
			ResourceGroup: resourceGroupTemplate,
			Script:        []string{script},
			Artifacts:     &artifacts{Paths: []string{ResultFile}, When: "always"},
		}
		if err := add(name, j); err != nil {
			return nil, err
		}
	}
	var b strings.Builder
	b.WriteString("# A child pipeline written by kubectl gitlab-agent fleet pipeline: one job per agent.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
