package cmd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// NewCmdAgent builds the `agent` group.
func NewCmdAgent(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "List, show, register and delete the agents of a GitLab project",
		Long: `The agent registrations of a GitLab project (--project, in CI $CI_PROJECT_ID, else
the project of the git remote). Credentials come from GITLAB_TOKEN or
--gitlab-token-file: a personal, project or group access token with the api
scope.`,
	}
	cmd.AddCommand(
		newCmdAgentList(g, streams),
		newCmdAgentGet(g, streams),
		newCmdAgentRegister(g, streams),
		newCmdAgentDelete(g, streams),
		newCmdAgentConfig(g, streams),
	)
	return cmd
}

// gitlabCommand is what every GitLab-side command completes: output format,
// client and project, in an order that rejects bad input before any request.
type gitlabCommand struct {
	Global  *GlobalOptions
	format  string
	client  *gitlab.Client
	project gitlab.ProjectRef
	genericiooptions.IOStreams
}

func (c *gitlabCommand) complete(formats ...string) error {
	var err error
	if c.format, err = outputFormat(c.Global, formats...); err != nil {
		return err
	}
	if c.project, err = c.Global.ProjectRef(c.ErrOut); err != nil {
		return err
	}
	c.client, err = c.Global.GitLabClient(c.ErrOut)
	return err
}

// findAgent reads a NAME|ID argument, completes the command (formats as in
// complete) and looks the agent up: bad input fails before any request.
func (c *gitlabCommand) findAgent(ctx context.Context, arg string, formats ...string) (*gitlab.Agent, error) {
	ref, err := gitlab.ParseAgentRef(arg)
	if err != nil {
		return nil, err
	}
	if err := c.complete(formats...); err != nil {
		return nil, err
	}
	return c.client.FindAgent(ctx, c.project, ref)
}

func (c *gitlabCommand) color() bool { return ui.ColorEnabled(c.Out, c.Global.NoColor) }

// printAgents writes agents as a table or a document.
func (c *gitlabCommand) printAgents(agents []*gitlab.Agent, single bool) error {
	switch c.format {
	case "json":
		if single {
			return ui.PrintJSON(c.Out, agents[0])
		}
		return ui.PrintJSON(c.Out, map[string]any{"agents": agents})
	case "yaml":
		if single {
			return ui.PrintYAML(c.Out, agents[0])
		}
		return ui.PrintYAML(c.Out, map[string]any{"agents": agents})
	}
	t := &ui.Table{Headers: []string{"name", "id", "config project", "age"}, Color: c.color()}
	now := time.Now()
	for _, a := range agents {
		t.Rows = append(t.Rows, []ui.Cell{ui.C(a.Name), ui.C(strconv.FormatInt(a.ID, 10)), ui.C(a.ConfigProject), ui.C(ui.Age(a.CreatedAt, now))})
	}
	return t.Write(c.Out)
}

// AgentListOptions lists a project's agents.
type AgentListOptions struct{ gitlabCommand }

func newCmdAgentList(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentListOptions{gitlabCommand{Global: g, IOStreams: streams}}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the agents registered in a project",
		Example: `  kubectl gitlab-agent agent list --project infra/agents
  kubectl gitlab-agent agent list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete("table", "json", "yaml"); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
}

// Run lists the agents.
func (o *AgentListOptions) Run(ctx context.Context) error {
	agents, err := o.client.ListAgents(ctx, o.project)
	if err != nil {
		return err
	}
	if len(agents) == 0 && o.format == "table" {
		fmt.Fprintf(o.ErrOut, "no agents registered in %s\n", o.project)
		return nil
	}
	return o.printAgents(agents, false)
}

// AgentGetOptions shows one agent.
type AgentGetOptions struct{ gitlabCommand }

func newCmdAgentGet(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentGetOptions{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	return &cobra.Command{
		Use:   "get NAME|ID",
		Short: "Show one agent",
		Args:  exactArgs(1, "NAME|ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.findAgent(cmd.Context(), args[0], "table", "json", "yaml")
			if err != nil {
				return err
			}
			return o.printAgents([]*gitlab.Agent{a}, true)
		},
	}
}

// AgentRegisterOptions registers an agent.
type AgentRegisterOptions struct {
	gitlabCommand
	name string
}

func newCmdAgentRegister(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentRegisterOptions{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	return &cobra.Command{
		Use:   "register NAME",
		Short: "Register an agent in a project (an existing one of that name is reported, not an error)",
		Long: `Register the agent NAME in the project. Agent names have at most 63 lowercase
letters, digits and '-', and start and end with a letter or digit. Registering
a name that exists already reports that agent and exits 0, so scripts can
re-run it. It needs the Maintainer role on the project.`,
		Example: `  kubectl gitlab-agent agent register prod-eu --project infra/agents`,
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if err := gitlab.ValidateAgentName(o.name); err != nil {
				return err
			}
			if err := o.complete("table", "json", "yaml"); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
}

// Run registers the agent unless it exists.
func (o *AgentRegisterOptions) Run(ctx context.Context) error {
	a, created, err := o.client.RegisterAgent(ctx, o.project, o.name)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(o.ErrOut, "registered agent %q in %s (id %d)\n", a.Name, o.project, a.ID)
	} else {
		fmt.Fprintf(o.ErrOut, "agent %q is already registered in %s (id %d)\n", a.Name, o.project, a.ID)
	}
	return o.printAgents([]*gitlab.Agent{a}, true)
}

// AgentDeleteOptions deletes an agent.
type AgentDeleteOptions struct {
	gitlabCommand
	ref gitlab.AgentRef
	yes bool
}

func newCmdAgentDelete(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentDeleteOptions{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "delete NAME|ID",
		Short: "Delete an agent registration (its tokens stop working at once)",
		Long: `Delete the agent's registration from the project. Every token of the agent
stops working, so an agentk still running with one disconnects. Asks for
confirmation on a terminal; elsewhere it needs --yes.`,
		Args: exactArgs(1, "NAME|ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.ref, err = gitlab.ParseAgentRef(args[0]); err != nil {
				return err
			}
			if err := o.complete("table"); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// Run deletes the agent after confirmation.
func (o *AgentDeleteOptions) Run(ctx context.Context) error {
	a, err := o.client.FindAgent(ctx, o.project, o.ref)
	if err != nil {
		return err
	}
	if !o.yes {
		ok, err := ui.Confirm(ctx, o.In, o.ErrOut, fmt.Sprintf("Delete agent %q (id %d) from %s? Its tokens stop working.", a.Name, a.ID, o.project))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("not deleted")
		}
	}
	if err := o.client.DeleteAgent(ctx, o.project, a); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "deleted agent %q (id %d) from %s\n", a.Name, a.ID, o.project)
	return nil
}
