package cmd

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
)

// gitlabCommand is what the GitLab-side commands share: the GitLab flags,
// -o, and the client and project they complete to, in an order that rejects
// bad input before any request.
type gitlabCommand struct {
	Factory Factory
	Global  *GlobalOptions
	GitLab  GitLabFlags
	Output  *OutputFlags

	client  *gitlab.Client
	project gitlab.ProjectRef
	genericiooptions.IOStreams
}

// newGitLabCommand takes -o in formats (the first the default).
func newGitLabCommand(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams, formats ...string) gitlabCommand {
	return gitlabCommand{Factory: f, Global: g, Output: NewOutputFlags(formats...), IOStreams: streams}
}

// command finishes cmd as a GitLab command that o runs: it takes args, the
// GitLab flags with --project, and -o.
func (c *gitlabCommand) command(o options, args cobra.PositionalArgs, cmd *cobra.Command) *cobra.Command {
	c.addFlags(cmd, true)
	return leaf(o, args, cmd)
}

// addFlags binds the GitLab flags (withProject: --project too) and -o.
func (c *gitlabCommand) addFlags(cmd *cobra.Command, withProject bool) {
	c.GitLab.AddFlags(cmd, withProject)
	c.Output.AddFlags(cmd)
}

// Complete takes no arguments of its own.
func (c *gitlabCommand) Complete(*cobra.Command, []string) error { return c.complete() }

// Validate has nothing left to check.
func (c *gitlabCommand) Validate() error { return nil }

// complete checks -o and settles the project and the client.
func (c *gitlabCommand) complete() error {
	if err := c.Output.Validate(); err != nil {
		return err
	}
	var err error
	if c.project, err = c.GitLab.ProjectRef(c.ErrOut); err != nil {
		return err
	}
	c.client, err = c.GitLab.Client(c.Factory, c.ErrOut)
	return err
}

// agentCommand is a GitLab command about one agent, named by a NAME|ID
// argument.
type agentCommand struct {
	gitlabCommand
	ref gitlab.AgentRef
	// act is the command's work on the agent, once it is found.
	act func(ctx context.Context, a *gitlab.Agent) error
}

// newAgentCommand is an agentCommand that does act on the agent it finds;
// with a nil act the command has a Run of its own.
func newAgentCommand(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams, act func(context.Context, *gitlab.Agent) error, formats ...string) agentCommand {
	return agentCommand{gitlabCommand: newGitLabCommand(f, g, streams, formats...), act: act}
}

// command finishes cmd as gitlabCommand.command does; its first argument
// completes to the project's agents.
func (c *agentCommand) command(o options, args cobra.PositionalArgs, cmd *cobra.Command) *cobra.Command {
	cmd.ValidArgsFunction = agentNames(c.Factory, &c.GitLab)
	return c.gitlabCommand.command(o, args, cmd)
}

// Run finds the agent and acts on it.
func (c *agentCommand) Run(ctx context.Context) error {
	a, err := c.agent(ctx)
	if err != nil {
		return err
	}
	return c.act(ctx, a)
}

// Complete reads the NAME|ID argument and completes the command: bad input
// fails before any request.
func (c *agentCommand) Complete(_ *cobra.Command, args []string) (err error) {
	if c.ref, err = gitlab.ParseAgentRef(args[0]); err != nil {
		return err
	}
	return c.complete()
}

// Validate has nothing left to check.
func (c *agentCommand) Validate() error { return nil }

// agent looks the agent up.
func (c *agentCommand) agent(ctx context.Context) (*gitlab.Agent, error) {
	return c.client.FindAgent(ctx, c.project, c.ref)
}

// print writes the command's result to Out in the -o format.
func (c *gitlabCommand) print(result any) error {
	return c.Output.Print(c.Out, c.Global.NoColor, result)
}
