package cmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// NewCmdAgent builds the `agent` group.
func NewCmdAgent(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "List, show, register and delete the agents of a GitLab project",
		Long: `The agent registrations of a GitLab project (--project, in CI $CI_PROJECT_ID, else
the project of the git remote). Credentials come from GITLAB_TOKEN or
--gitlab-token-file: a personal, project or group access token with the api
scope.`,
		Example: `  kubectl gitlab-agent agent list --project infra/agents
  kubectl gitlab-agent agent register prod-eu --project infra/agents`,
	}
	cmd.AddCommand(
		newCmdAgentList(f, g, streams),
		newCmdAgentGet(f, g, streams),
		newCmdAgentRegister(f, g, streams),
		newCmdAgentDelete(f, g, streams),
		newCmdAgentConfig(f, g, streams),
	)
	return cmd
}

// agentList is what agent list prints.
type agentList struct {
	Agents []*gitlab.Agent `json:"agents"`
}

// Table is the agents as a table; wide adds who registered each, and its
// config project's ID.
func (l agentList) Table(wide bool) *ui.Table { return agentTable(l.Agents, wide) }

// Names are the agents as agent/NAME.
func (l agentList) Names() []string {
	names := make([]string, len(l.Agents))
	for i, a := range l.Agents {
		names[i] = "agent/" + a.Name
	}
	return names
}

// ItemsField is the document's list of agents.
func (agentList) ItemsField() string { return "agents" }

// agentResult is what agent get and agent register print: the agent itself;
// with --dry-run, the agent register would make (ID 0) and the strategy.
type agentResult struct {
	*gitlab.Agent
	DryRun install.DryRun `json:"dryRun,omitempty"`
}

// WriteText writes the agent as a table of one row; a dry run says what it
// would register.
func (r agentResult) WriteText(w io.Writer, p *ui.Painter) error {
	if r.DryRun != install.DryRunNone {
		_, err := fmt.Fprintf(w, "agent %q registered in %s (dry run)\n", r.Name, safetext.Line(r.ConfigProject))
		return err
	}
	t := agentTable([]*gitlab.Agent{r.Agent}, false)
	t.Color = p.Colors()
	return t.Write(w)
}

// agentTable is agents as a table; wide adds who registered each, and its
// config project's ID.
func agentTable(agents []*gitlab.Agent, wide bool) *ui.Table {
	t := &ui.Table{Headers: []string{"name", "id", "config project", "age"}}
	if wide {
		t.Headers = append(t.Headers, "created by", "config project id")
	}
	now := time.Now()
	for _, a := range agents {
		row := []ui.Cell{ui.C(a.Name), ui.C(strconv.FormatInt(a.ID, 10)), ui.C(a.ConfigProject), ui.C(ui.Age(a.CreatedAt, now))}
		if wide {
			row = append(row, ui.C(userID(a.CreatedByUserID)), ui.C(strconv.FormatInt(a.ConfigProjectID, 10)))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// userID is a GitLab user's ID as a cell, "<none>" when not known.
func userID(id int64) string {
	if id == 0 {
		return "<none>"
	}
	return strconv.FormatInt(id, 10)
}

// agentDeleted is what agent delete prints; with --dry-run, what it would
// delete and the strategy.
type agentDeleted struct {
	Deleted *gitlab.Agent  `json:"deleted"`
	DryRun  install.DryRun `json:"dryRun,omitempty"`
	project gitlab.ProjectRef
}

// WriteText says what was deleted.
func (d agentDeleted) WriteText(w io.Writer, _ *ui.Painter) error {
	suffix := ""
	if d.DryRun != install.DryRunNone {
		suffix = " (dry run)"
	}
	_, err := fmt.Fprintf(w, "deleted agent %q (id %d) from %s%s\n", d.Deleted.Name, d.Deleted.ID, d.project, suffix)
	return err
}

// AgentListOptions lists a project's agents.
type AgentListOptions struct {
	gitlabCommand
	// Shared lists the agents the project may use instead.
	Shared bool
}

func newCmdAgentList(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentListOptions{gitlabCommand: newGitLabCommand(f, g, streams)}
	o.Output = newListOutputFlags("table", "json", "yaml")
	cmd := o.command(o, cobra.NoArgs, &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the agents registered in a project, or with --shared those it may use",
		Long: `List the agents registered in the project.

With --shared, list the agents the project may use instead, and how: every
agent whose config file (.gitlab/agents/NAME/config.yaml in its own project)
names this project or a group above it under ci_access or user_access, one
row per agent and access kind, with the entry's access_as, environments and
resource_management. The project's own agents are listed too: GitLab gives
its CI jobs their agents without an entry.

Why can't my job see the agent? A CI job gets a kubeconfig context for each
agent listed here as ci_access, and for no other. If the agent is missing:
its config file must be on its project's default branch; the entry must name
this project or a group above it by full path; both projects must be under
the same top-level group; and access_as impersonate, ci_user or ci_job need
GitLab Premium (elsewhere the entry is ignored). If the agent is listed but
the job still lacks it, check environments: only jobs of those environments
get it.`,
		Example: `  kubectl gitlab-agent agent list --project infra/agents
  kubectl gitlab-agent agent list -o json

  # The agents shared with a project, and how
  kubectl gitlab-agent agent list --shared --project my-org/team/app

  # The names alone, or chosen columns, as kubectl prints them
  kubectl gitlab-agent agent list -o jsonpath='{.agents[*].name}'
  kubectl gitlab-agent agent list -o custom-columns=NAME:.name,ID:.id --no-headers`,
	})
	cmd.Flags().BoolVar(&o.Shared, "shared", false, "list the agents this project may use (ci_access and user_access of any agent, its own included), not those registered in it")
	return cmd
}

// Run lists the agents.
func (o *AgentListOptions) Run(ctx context.Context) error {
	if o.Shared {
		return o.runShared(ctx)
	}
	agents, err := o.client.ListAgents(ctx, o.project)
	if err != nil {
		return err
	}
	if len(agents) == 0 && o.Output.Text() {
		fmt.Fprintf(o.ErrOut, "no agents registered in %s\n", o.project)
		return nil
	}
	return o.print(agentList{orEmpty(agents)})
}

// AgentGetOptions shows one agent.
type AgentGetOptions struct{ agentCommand }

func newCmdAgentGet(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentGetOptions{}
	o.agentCommand = newAgentCommand(f, g, streams, o.show, "table", "json", "yaml")
	return o.command(o, exactArgs(1, "NAME|ID"), &cobra.Command{
		Use:   "get NAME|ID",
		Short: "Show one agent",
		Example: `  kubectl gitlab-agent agent get prod-eu --project infra/agents
  kubectl gitlab-agent agent get 42 -o json`,
	})
}

// show looks the agent up and prints it.
func (o *AgentGetOptions) show(ctx context.Context, a *gitlab.Agent) error {
	return o.print(agentResult{Agent: a})
}

// AgentRegisterOptions registers an agent.
type AgentRegisterOptions struct {
	gitlabCommand
	DryRun dryRunFlag
	name   string
}

func newCmdAgentRegister(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentRegisterOptions{gitlabCommand: newGitLabCommand(f, g, streams, "table", "json", "yaml")}
	cmd := o.command(o, exactArgs(1, "NAME"), &cobra.Command{
		Use:   "register NAME",
		Short: "Register an agent in a project (an existing one of that name is reported, not an error)",
		Long: `Register the agent NAME in the project. Agent names have at most 63 lowercase
letters, digits and '-', and start and end with a letter or digit. Registering
a name that exists already reports that agent and exits 0, so scripts can
re-run it. It needs the Maintainer role on the project.`,
		Example: `  kubectl gitlab-agent agent register prod-eu --project infra/agents
  kubectl gitlab-agent agent register prod-eu --project infra/agents --dry-run`,
	})
	o.DryRun.addGitLab(cmd)
	return cmd
}

// Complete checks the name before anything else.
func (o *AgentRegisterOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	if err := agentname.Validate(o.name); err != nil {
		return err
	}
	if err := o.DryRun.parse(o.ErrOut); err != nil {
		return err
	}
	return o.complete()
}

// Run registers the agent unless it exists.
func (o *AgentRegisterOptions) Run(ctx context.Context) error {
	if o.DryRun.on() {
		return o.planned(ctx)
	}
	a, created, err := o.client.RegisterAgent(ctx, o.project, o.name)
	if err != nil {
		return err
	}
	verb := "registered agent %q in %s (id %d)\n"
	if !created {
		verb = "agent %q is already registered in %s (id %d)\n"
	}
	fmt.Fprintf(o.ErrOut, verb, a.Name, o.project, a.ID)
	return o.print(agentResult{Agent: a})
}

// planned prints the agent register would make, or the one that exists.
func (o *AgentRegisterOptions) planned(ctx context.Context) error {
	a, err := o.client.FindAgent(ctx, o.project, gitlab.AgentRef{Name: o.name})
	if err == nil {
		fmt.Fprintf(o.ErrOut, "agent %q is already registered in %s (id %d)\n", a.Name, o.project, a.ID)
		return o.print(agentResult{Agent: a})
	}
	if !gitlab.IsClass(err, gitlab.ClassNotFound) {
		return err
	}
	p, err := o.client.GetProject(ctx, o.project)
	if err != nil {
		return err
	}
	return o.print(agentResult{Agent: &gitlab.Agent{Name: o.name, ConfigProject: p.PathWithNamespace, ConfigProjectID: p.ID}, DryRun: o.DryRun.strategy})
}

// AgentDeleteOptions deletes an agent.
type AgentDeleteOptions struct {
	agentCommand
	Yes    bool
	DryRun dryRunFlag
}

func newCmdAgentDelete(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentDeleteOptions{}
	o.agentCommand = newAgentCommand(f, g, streams, o.remove, "text", "json", "yaml")
	cmd := o.command(o, exactArgs(1, "NAME|ID"), &cobra.Command{
		Use:   "delete NAME|ID",
		Short: "Delete an agent registration (its tokens stop working at once)",
		Long: `Delete the agent's registration from the project. Every token of the agent
stops working, so an agentk still running with one disconnects. Asks for
confirmation on a terminal; elsewhere it needs --yes. --dry-run says what
would be deleted and asks nothing.`,
		Example: `  kubectl gitlab-agent agent delete prod-eu --project infra/agents

  # In a script: no question asked
  kubectl gitlab-agent agent delete 42 --project infra/agents --yes`,
	})
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	o.DryRun.addGitLab(cmd)
	return cmd
}

// Validate checks --dry-run.
func (o *AgentDeleteOptions) Validate() error { return o.DryRun.parse(o.ErrOut) }

// remove deletes the agent after confirmation.
func (o *AgentDeleteOptions) remove(ctx context.Context, a *gitlab.Agent) error {
	if o.DryRun.on() {
		return o.print(agentDeleted{Deleted: a, DryRun: o.DryRun.strategy, project: o.project})
	}
	if !o.Yes {
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
	return o.print(agentDeleted{Deleted: a, project: o.project})
}
