package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

func newCmdAgentConfig(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and edit the agent's config file .gitlab/agents/NAME/config.yaml",
		Long: `The agent's config file lives in its config project at
.gitlab/agents/NAME/config.yaml, on the default branch. 'set' edits it in place
through GitLab's repository files API: every other key, comment and the order
stay as they are, and an edit that changes nothing makes no commit.`,
		Example: `  kubectl gitlab-agent agent config show prod-eu --project infra/agents
  kubectl gitlab-agent agent config set prod-eu --project infra/agents --ci-access-project apps/web`,
	}
	cmd.AddCommand(newCmdAgentConfigShow(f, g, streams), newCmdAgentConfigSet(f, g, streams))
	return cmd
}

// agentConfigTarget resolves the agent name (the file's folder) and the
// branch to read and commit.
type agentConfigTarget struct {
	agentCommand
	Branch string
	name   string
}

func (o *agentConfigTarget) resolve(ctx context.Context) error {
	f, err := install.FindConfigFile(ctx, o.client, o.project, o.ref, o.Branch)
	if err != nil {
		return err
	}
	o.name, o.Branch = f.Agent, f.Branch
	return nil
}

// AgentConfigShowOptions prints the config file.
type AgentConfigShowOptions struct{ agentConfigTarget }

func newCmdAgentConfigShow(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentConfigShowOptions{agentConfigTarget{agentCommand: newAgentCommand(f, g, streams, nil, "yaml", "json")}}
	cmd := o.command(o, exactArgs(1, "AGENT"), &cobra.Command{
		Use:   "show AGENT",
		Short: "Print the agent's config file",
		Example: `  kubectl gitlab-agent agent config show prod-eu --project infra/agents

  # Where it was read, and its content, for a script
  kubectl gitlab-agent agent config show prod-eu --branch review -o json`,
	})
	cmd.Flags().StringVar(&o.Branch, "branch", "", "read this branch (default: the project's default branch)")
	return cmd
}

// Run prints the file as it is in the repository.
func (o *AgentConfigShowOptions) Run(ctx context.Context) error {
	if err := o.resolve(ctx); err != nil {
		return err
	}
	path := agentconfig.Path(o.name)
	f, found, err := o.client.GetFile(ctx, o.project, path, o.Branch)
	if err != nil {
		return err
	}
	if !found && o.Output.Format != ui.JSON {
		fmt.Fprintf(o.ErrOut, "%s has no %s on %s: agent %q runs with the defaults\n", o.project, path, o.Branch, o.name)
		return nil
	}
	res := configFile{Branch: o.Branch, Exists: found, Path: path, Project: o.project.String()}
	if found {
		res.Content = string(f.Content)
	}
	return o.print(res)
}

// configFile is what agent config show prints: -o yaml (the default) is
// the file itself, -o json says where it was read. The fields are in the
// order -o json has always had (a map's, sorted).
type configFile struct {
	Branch  string `json:"branch"`
	Content string `json:"content"`
	Exists  bool   `json:"exists"`
	Path    string `json:"path"`
	Project string `json:"project"`
}

// WriteYAML writes the file as it is in the repository: GitLab's bytes,
// made inert.
func (f configFile) WriteYAML(w io.Writer) error {
	_, err := io.WriteString(w, safetext.Text(f.Content))
	return err
}

// AgentConfigSetOptions edits the config file.
type AgentConfigSetOptions struct {
	agentConfigTarget
	Add      map[string]*[]string // "ci_access.projects" → ids
	Remove   map[string]*[]string
	AccessAs string
	DryRun   dryRunFlag
	Message  string
}

func newCmdAgentConfigSet(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AgentConfigSetOptions{
		agentConfigTarget: agentConfigTarget{agentCommand: newAgentCommand(f, g, streams, nil, "text", "json", "yaml")},
		Add:               map[string]*[]string{},
		Remove:            map[string]*[]string{},
	}
	cmd := o.command(o, exactArgs(1, "AGENT"), &cobra.Command{
		Use:   "set AGENT",
		Short: "Edit the agent's config file and commit it",
		Long: `Edit the access settings of the agent's config file and commit the result to the
config project's default branch (--branch for another). The rest of the file,
its comments and its order stay as they are. Nothing is committed when the
file already says what was asked, or with --dry-run, which prints the new file.`,
		Example: `  # Let CI jobs of apps/web reach the cluster, and developers of infra/agents
  kubectl gitlab-agent agent config set prod-eu --project infra/agents \
      --ci-access-project apps/web --user-access-project infra/agents --access-as agent

  kubectl gitlab-agent agent config set prod-eu --remove-ci-access-project apps/old --dry-run`,
	})
	fl := cmd.Flags()
	for _, sec := range []struct{ flag, section string }{{"ci-access", agentconfig.CIAccess}, {"user-access", agentconfig.UserAccess}} {
		for _, kind := range []struct{ flag, kind string }{{"project", agentconfig.Projects}, {"group", agentconfig.Groups}} {
			key := sec.section + "." + kind.kind
			o.Add[key], o.Remove[key] = new([]string), new([]string)
			fl.StringArrayVar(o.Add[key], sec.flag+"-"+kind.flag, nil, fmt.Sprintf("add a %s to %s (repeatable)", kind.flag, key))
			fl.StringArrayVar(o.Remove[key], "remove-"+sec.flag+"-"+kind.flag, nil, fmt.Sprintf("remove a %s from %s (repeatable)", kind.flag, key))
		}
	}
	fl.StringVar(&o.AccessAs, "access-as", "", "user_access.access_as: agent (the agent's own identity) or user (impersonate the GitLab user)")
	fl.StringVar(&o.Branch, "branch", "", "commit to this branch (default: the project's default branch)")
	o.DryRun.addGitLab(cmd)
	fl.StringVar(&o.Message, "message", "", "the commit message (default: a summary of the edit)")
	return cmd
}

// Validate checks the edits before any request.
func (o *AgentConfigSetOptions) Validate() error {
	if err := o.DryRun.parse(o.ErrOut); err != nil {
		return err
	}
	if o.AccessAs != "" && o.AccessAs != "agent" && o.AccessAs != "user" {
		return fmt.Errorf("--access-as must be agent or user, got %q", o.AccessAs)
	}
	edits := 0
	for key := range o.Add {
		_, kind, _ := strings.Cut(key, ".")
		for _, id := range append(append([]string{}, *o.Add[key]...), *o.Remove[key]...) {
			if err := agentconfig.ValidateEntry(kind, id); err != nil {
				return err
			}
			edits++
		}
	}
	if edits == 0 && o.AccessAs == "" {
		return fmt.Errorf("nothing to set: pass --ci-access-project, --user-access-group, --access-as or another edit flag (see --help)")
	}
	return nil
}

// Run reads, edits and commits the file.
func (o *AgentConfigSetOptions) Run(ctx context.Context) error {
	res, err := install.EditConfig(ctx, install.Env{GitLab: o.client}, install.ConfigEditOptions{
		Project: o.project, Agent: o.ref, Branch: o.Branch, Add: entries(o.Add), Remove: entries(o.Remove),
		AccessAs: o.AccessAs, DryRun: o.DryRun.on(), Message: o.Message,
	})
	if err != nil {
		var cfe *install.ConfigFileError
		if errors.As(err, &cfe) {
			return fmt.Errorf("%w (fix the file in %s first)", err, o.project)
		}
		return err
	}
	o.Branch = res.Branch
	path, done := res.Path, res.Changes
	doc := configSetDocument{Project: o.project.String(), Path: path, Branch: o.Branch, Changes: append([]string{}, done...),
		Committed: res.Committed, Content: string(res.Content)}
	summary := strings.Join(done, ", ")
	if len(done) > 0 && o.DryRun.on() && o.Output.Text() {
		fmt.Fprintf(o.ErrOut, "would commit %s to %s in %s: %s\n", path, o.Branch, o.project, summary)
	}
	return o.print(doc)
}

// configSetDocument is what 'agent config set' did, for -o json|yaml; with
// --dry-run, Content is the file it would commit.
type configSetDocument struct {
	Project   string   `json:"project"`
	Path      string   `json:"path"`
	Branch    string   `json:"branch"`
	Changes   []string `json:"changes"`
	Committed bool     `json:"committed"`
	Content   string   `json:"content,omitempty"`
}

// WriteText says what was committed, or that nothing was; with --dry-run
// it writes the file that would be (made inert).
func (d configSetDocument) WriteText(w io.Writer, _ *ui.Painter) error {
	var err error
	switch {
	case len(d.Changes) == 0:
		_, err = fmt.Fprintf(w, "%s on %s already says that: nothing to commit\n", d.Path, d.Branch)
	case !d.Committed:
		_, err = io.WriteString(w, safetext.Text(d.Content))
	default:
		_, err = fmt.Fprintf(w, "committed %s to %s in %s: %s\n", d.Path, d.Branch, d.Project, strings.Join(d.Changes, ", "))
	}
	return err
}

// entries are the flags' values by "section.kind".
func entries(flags map[string]*[]string) map[string][]string {
	out := map[string][]string{}
	for key, ids := range flags {
		out[key] = *ids
	}
	return out
}
