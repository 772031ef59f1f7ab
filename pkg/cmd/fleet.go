package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/fleet"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// NewCmdFleet builds `fleet`, the commands for many agents at once.
func NewCmdFleet(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Work on many agents at once, from GitLab CI",
		Example: `  # A child pipeline that upgrades every outdated agent under my-org (docs/fleet.md)
  kubectl gitlab-agent fleet pipeline --group my-org --outdated -- upgrade {agent} > fleet.yml`,
	}
	cmd.AddCommand(NewCmdFleetPipeline(f, g, streams))
	return cmd
}

// FleetPipelineOptions prints a child pipeline that runs one command per
// agent of a group.
type FleetPipelineOptions struct {
	Factory Factory
	Global  *GlobalOptions
	GitLab  GitLabFlags
	genericiooptions.IOStreams

	Group        string
	NoSubgroups  bool
	Outdated     bool
	Disconnected bool
	Agents       []string
	Image        string

	args    []string
	named   []fleet.Target
	command string
	client  *gitlab.Client
}

// NewCmdFleetPipeline builds `fleet pipeline`.
func NewCmdFleetPipeline(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &FleetPipelineOptions{Factory: f, Global: g, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "pipeline --group GROUP [--outdated | --disconnected | --agent PATH:NAME ...] [--image IMAGE] -- ARGS...",
		Short: "Print a GitLab CI child pipeline that runs a command once per agent of a group",
		Long: `Print (on stdout) a GitLab CI child pipeline that runs
"kubectl gitlab-agent ARGS --context $AGENT_CONTEXT -o json" once per agent
selected under GROUP (its subgroups' too unless --no-subgroups), through the
KUBECONFIG GitLab injects into jobs, whose context for an agent is named
PROJECT_PATH:AGENT_NAME. A parent job runs this command and triggers the
pipeline from its artifact (docs/fleet.md); the management project must be in
each agent's ci_access.

Every agent is selected, or with --outdated those whose agentk version is
outside GitLab's skew range from KAS (skew warn or fail, as status --group
shows it; an agent whose version is unknown is left out and counted on
stderr), with --disconnected those not connected, or those named with --agent
(each must be under GROUP).

The jobs are parallel:matrix jobs (fleet-1, fleet-2, ...: at most 200 agents
each, GitLab's limit) with the variables AGENT_CONTEXT, AGENT_PROJECT and
AGENT_NAME, and resource_group agent/$AGENT_PROJECT/$AGENT_NAME, so two
pipelines never work on one agent at once. An ARG that is exactly {agent} or
{project} becomes the job's agent name or project path ("upgrade {agent}").
Each job keeps the command's JSON output as the artifact result.json, also
when it fails. With no agent selected the pipeline has one job, fleet-none,
that says so (GitLab refuses a child pipeline without jobs).

The pipeline holds no credential: the jobs reach the clusters with GitLab's
KUBECONFIG and the job token.`,
		Example: `  # Upgrade every agent under my-org/platform that is outside GitLab's skew range
  kubectl gitlab-agent fleet pipeline --group my-org/platform --outdated -- upgrade {agent} > fleet.yml

  # doctor on two named agents, with the image of your own registry
  kubectl gitlab-agent fleet pipeline --group my-org --agent my-org/infra:prod-eu --agent my-org/infra:prod-us \
    --image registry.example.com/tools/kubectl-gitlab-agent:v1 -- doctor {agent} > fleet.yml`,
		RunE: runOptions(o),
	}
	o.GitLab.AddFlags(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&o.Group, "group", "", "the group whose agents (its projects', and its subgroups' unless --no-subgroups) the pipeline runs on (full path; required)")
	fl.BoolVar(&o.NoSubgroups, "no-subgroups", false, "only the agents of the group's own projects, not its subgroups'")
	fl.BoolVar(&o.Outdated, "outdated", false, "only agents whose agentk version is outside GitLab's skew range from KAS (skew warn or fail)")
	fl.BoolVar(&o.Disconnected, "disconnected", false, "only agents that are not connected")
	fl.StringArrayVar(&o.Agents, "agent", nil, "only this agent, as PROJECT_PATH:AGENT_NAME (repeatable)")
	fl.StringVar(&o.Image, "image", fleet.DefaultImage, "the jobs' image: sh, kubectl and kubectl-gitlab_agent on PATH (docs/ci.md, An image)")
	return cmd
}

// Complete checks the flags and ARGS and makes the GitLab client; it makes
// no request.
func (o *FleetPipelineOptions) Complete(cmd *cobra.Command, args []string) error {
	if o.Group == "" {
		return errors.New("--group is required")
	}
	n := 0
	for _, set := range []bool{o.Outdated, o.Disconnected, len(o.Agents) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("--outdated, --disconnected and --agent exclude each other")
	}
	if strings.TrimSpace(o.Image) == "" {
		return errors.New("--image is empty")
	}
	if cmd.ArgsLenAtDash() != 0 || len(args) == 0 {
		return errors.New("give the command to run after --, e.g. fleet pipeline --group GROUP -- upgrade {agent}")
	}
	if err := o.checkArgs(cmd.Root(), args); err != nil {
		return err
	}
	o.args = args
	seen := map[fleet.Target]bool{}
	for _, a := range o.Agents {
		t, err := fleet.ParseTarget(a)
		if err != nil {
			return fmt.Errorf("--agent %w", err)
		}
		if !seen[t] {
			seen[t] = true
			o.named = append(o.named, t)
		}
	}
	var err error
	o.client, err = o.GitLab.Client(o.Factory, o.ErrOut)
	return err
}

// checkArgs makes sure ARGS run a command of this plugin that prints
// -o json and works through --context, which the pipeline adds.
func (o *FleetPipelineOptions) checkArgs(root *cobra.Command, args []string) error {
	for _, a := range args {
		switch {
		case a == "--":
			return errors.New("ARGS hold --: the pipeline adds --context and -o after ARGS, which -- would make arguments")
		case a == "--context" || strings.HasPrefix(a, "--context="):
			return errors.New("ARGS hold --context: each job sets it to its agent's context")
		case a == "-o" || a == "--output" || strings.HasPrefix(a, "--output=") || (strings.HasPrefix(a, "-o") && !strings.HasPrefix(a, "--")):
			return errors.New("ARGS hold -o: each job writes -o json to result.json")
		}
	}
	c, _, err := root.Find(args)
	if err != nil || c == root || !c.Runnable() {
		return fmt.Errorf("ARGS: %q is not a command of %s", safetext.Line(args[0]), DisplayName)
	}
	o.command = strings.TrimPrefix(c.CommandPath(), root.CommandPath()+" ")
	out := c.Flags().Lookup("output")
	// The formats a command takes are only in -o's usage line (OutputFlags).
	if strings.HasPrefix(o.command, "fleet") || c.Flags().Lookup("context") == nil || out == nil || !strings.Contains(out.Usage, "json") {
		return fmt.Errorf("ARGS: %s cannot run in a fleet job: it must take --context and -o json", o.command)
	}
	return nil
}

// Validate has nothing left to check.
func (o *FleetPipelineOptions) Validate() error { return nil }

// Run reads the group's agents, selects them and prints the pipeline.
func (o *FleetPipelineOptions) Run(ctx context.Context) error {
	var kasVersion string
	if o.Outdated {
		kas, err := o.client.DiscoverKAS(ctx)
		if err != nil {
			return fmt.Errorf("--outdated needs KAS's version: %w", err)
		}
		if kas.Version == "" {
			return errors.New("--outdated needs KAS's version, and GitLab did not tell it")
		}
		kasVersion = kas.Version
	}
	agents, err := o.client.GroupAgents(ctx, o.Group, !o.NoSubgroups, nil)
	if err != nil {
		return err
	}
	targets, why, err := o.selectTargets(agents, kasVersion)
	if err != nil {
		return err
	}
	p := fleet.Pipeline{Image: o.Image, Args: o.args, Targets: targets, Empty: why}
	b, err := p.YAML()
	if err != nil {
		return err
	}
	if _, err := o.Out.Write(b); err != nil {
		return err
	}
	if len(targets) == 0 {
		fmt.Fprintf(o.ErrOut, "warning: %s: the pipeline has one job, fleet-none, that says so\n", why)
		return nil
	}
	names := p.JobNames()
	fmt.Fprintf(o.ErrOut, "%d agents, %d jobs (%s) of %s\n", len(targets), len(names), strings.Join(names, ", "), o.command)
	return nil
}

// selectTargets picks the agents the flags ask for, in GitLab's order; why
// says what no agent selected means.
func (o *FleetPipelineOptions) selectTargets(agents []gitlab.GroupAgent, kasVersion string) ([]fleet.Target, string, error) {
	group := safetext.Line(o.Group)
	var out []fleet.Target
	var unknown int
	byTarget := map[fleet.Target]bool{}
	for _, a := range agents {
		t := fleet.Target{Project: a.Project, Name: a.Name}
		if err := t.Validate(); err != nil {
			return nil, "", fmt.Errorf("GitLab gave an agent no pipeline can name: %s", safetext.Line(err.Error()))
		}
		byTarget[t] = true
		switch {
		case o.Outdated:
			s := skewOf(a.Version, kasVersion)
			if s == nil {
				unknown++
				continue
			}
			if *s == skewOK {
				continue
			}
		case o.Disconnected:
			if a.Connected {
				continue
			}
		case len(o.named) > 0:
			continue
		}
		out = append(out, t)
	}
	if unknown > 0 {
		fmt.Fprintf(o.ErrOut, "warning: %d agents left out: their agentk version is unknown (no connection tells it); see status --group %s\n", unknown, group)
	}
	for _, t := range o.named {
		if !byTarget[t] {
			return nil, "", fmt.Errorf("--agent %s: no such agent under group %s", t.Context(), group)
		}
		out = append(out, t)
	}
	why := "no agent under group " + group
	switch {
	case o.Outdated:
		why = "no agent under group " + group + " is outside GitLab's skew range from KAS " + kasVersion
	case o.Disconnected:
		why = "every agent under group " + group + " is connected"
	}
	return out, why, nil
}
