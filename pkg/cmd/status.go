package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// StatusOptions reports on agents in GitLab and in the current cluster.
type StatusOptions struct {
	gitlabCommand
	Kube   *genericclioptions.ConfigFlags
	names  []string
	env    install.Env
	doctor doctor.Env
	// NoDoctor leaves doctor's checks out.
	NoDoctor bool
	// notAsked says why GitLab is not asked ("" it is).
	notAsked string
	groupStatusOptions
}

// NewCmdStatus builds `status [NAME]`.
func NewCmdStatus(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{gitlabCommand: newGitLabCommand(f, g, streams)}
	o.Output = newListOutputFlags("table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show an agent's registration, tokens, KAS, in-cluster state and whether it is connected",
		Long: `One screen per agent (every agent of the project without NAME): its
registration, its tokens and their last use, KAS's address and version, the
agent's Deployment in the current cluster with agentk's version and its skew
from KAS, and a verdict: connected, installed-but-not-connected or not
installed. For an agent found in the current cluster (or named), doctor's
checks run too, each within 3s, and a Doctor line gives its verdict when it
is not healthy (--no-doctor leaves them out).

Without a credential GitLab's agents API takes (none at all, or only a CI
job's CI_JOB_TOKEN), status shows the cluster part: the agents installed in
the cluster (or named), their Deployments and the KAS address agentk is
given, with the verdict "installed" or "not installed", and a note on what
the GitLab part needs.

--group GROUP shows every agent of the projects under GROUP (its subgroups'
too unless --no-subgroups) from GitLab's GraphQL API instead: a row per
agent (project, agent, connected, agentk's version, skew from KAS, active
tokens, the oldest one's age) and a summary line; no cluster is read.

-o wide is a table instead, a row per agent; -o custom-columns makes a row
of each agent of the JSON document (docs/output.md).`,
		Example: `  # Every agent of the project, and whether it runs in the current cluster
  kubectl gitlab-agent status --project infra/agents

  # One agent, without doctor's checks, for a script
  kubectl gitlab-agent status prod-eu --no-doctor -o json

  # A row per agent
  kubectl gitlab-agent status --project infra/agents -o wide
  kubectl gitlab-agent status -o custom-columns=AGENT:.agent.name,VERDICT:.verdict,AGENTK:.cluster.version

  # Every agent under a group and its subgroups: connected, version, skew from KAS, tokens
  kubectl gitlab-agent status --group my-org/platform -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: runOptions(o),
	}
	o.addFlags(cmd, true)
	cmd.ValidArgsFunction = agentNames(f, &o.GitLab)
	o.Kube = newKubeFlags(cmd)
	cmd.Flags().BoolVar(&o.NoDoctor, "no-doctor", false, "do not run doctor's checks")
	cmd.Flags().StringVar(&o.Group, "group", "", "every agent of the projects under this group (full path), from GitLab's GraphQL API: a row per agent and a summary")
	cmd.Flags().BoolVar(&o.NoSubgroups, "no-subgroups", false, "with --group: only the group's own projects, not its subgroups'")
	return cmd
}

// Complete checks the names and connects; without a cluster the GitLab part
// is still shown, and without a credential GitLab takes (none at all, or a
// CI job's token, which the agents API refuses) the cluster part is.
func (o *StatusOptions) Complete(cmd *cobra.Command, args []string) error {
	if o.NoSubgroups && o.Group == "" {
		return errors.New("--no-subgroups needs --group")
	}
	if o.Group != "" {
		return o.completeGroup(args)
	}
	for _, a := range args {
		if err := agentname.Validate(a); err != nil {
			return err
		}
	}
	o.names = args
	creds, credErr := o.GitLab.Credentials()
	o.notAsked = gitlabNotAsked(creds, credErr)
	if o.notAsked == "" {
		if err := o.complete(); err != nil {
			return err
		}
		o.env = install.Env{GitLab: o.client}
	} else if err := o.Output.Validate(); err != nil {
		return err
	}
	c, err := o.Factory.Cluster(o.Kube)
	switch {
	case err != nil && o.notAsked != "":
		return fmt.Errorf("nothing to look at: GitLab not asked (%s), and no cluster: %w", o.notAsked, err)
	case err != nil:
		fmt.Fprintf(o.ErrOut, "warning: no cluster to look at (%v)\n", err)
	default:
		o.env.Cluster = c
	}
	if o.NoDoctor {
		return nil
	}
	url := o.GitLab.ResolvedURL()
	o.doctor = doctor.Env{GitLabURL: url, Project: o.project, Timeout: statusDoctorTimeout}
	if o.notAsked != "" {
		if o.doctor.Project, err = o.GitLab.ProjectRef(io.Discard); err != nil {
			o.doctor.NoProject = err
		}
	}
	f, err := o.GitLab.withRequestTimeout(o.Factory)
	if err != nil {
		return err
	}
	if credErr != nil {
		o.doctor.NoCredentials = credErr
	} else {
		o.GitLab.WarnCleartext(o.ErrOut, url, "the GitLab token")
		if o.doctor.GitLab, err = f.GitLab(doctorGitLab(url, creds, statusDoctorTimeout)); err != nil {
			return err
		}
	}
	return completeDoctorEnv(cmd.Context(), &o.doctor, f, o.Kube, "", creds)
}

// gitlabNotAsked says why status cannot ask GitLab's agents API with the
// credential at hand ("" it can): none found (the error lists what was
// tried), or only a CI job's token. Another error (a token file that cannot
// be read) stays an error.
func gitlabNotAsked(creds gitlab.Credentials, err error) string {
	switch {
	case errors.Is(err, gitlab.ErrNoCredentials):
		return err.Error()
	case err == nil && creds.Token == "" && creds.JobToken != "":
		return "GitLab's agents API does not accept CI_JOB_TOKEN; for registration, tokens and the connection set GITLAB_TOKEN to a token with the api scope"
	}
	return ""
}

// statusDoctorTimeout bounds each of doctor's checks under status.
const statusDoctorTimeout = 3 * time.Second

// Run reports.
func (o *StatusOptions) Run(ctx context.Context) error {
	if o.Group != "" {
		return o.runGroup(ctx)
	}
	var st []*install.AgentStatus
	var err error
	if o.notAsked != "" {
		fmt.Fprintf(o.ErrOut, "note: the cluster part only: %s\n", o.notAsked)
		st, err = install.ClusterStatus(ctx, o.env.Cluster, o.names, o.notAsked)
	} else {
		st, err = install.Status(ctx, o.env, o.project, o.names)
	}
	if err != nil {
		return err
	}
	if !o.NoDoctor {
		doctor.Diagnose(ctx, o.doctor, st, len(o.names) > 0)
	}
	return o.print(newStatusResult(st))
}

// statusResult is what status prints.
type statusResult struct {
	Agents []*install.AgentStatus `json:"agents"`
}

// newStatusResult is st with every list a list: the cluster part alone
// knows no tokens.
func newStatusResult(st []*install.AgentStatus) statusResult {
	for _, s := range st {
		s.Tokens = orEmpty(s.Tokens)
	}
	return statusResult{orEmpty(st)}
}

// Table is nil, a screen per agent being status's text form; wide is a
// table, a row per agent.
func (r statusResult) Table(wide bool) *ui.Table {
	if !wide {
		return nil
	}
	t := &ui.Table{Headers: []string{"name", "id", "verdict", "agentk", "kas", "ready", "namespace", "tokens", "doctor"}}
	verdictStyle := map[string]ui.Style{install.Connected: ui.Good, install.Installed: ui.Good, install.NotConnected: ui.Warn, install.NotInstalled: ui.Faint}
	for _, s := range r.Agents {
		id, kas, agentk, ready, ns, tokens, doc := "<none>", "<none>", "<none>", "<none>", "<none>", "<none>", "<none>"
		if s.GitLabNotAsked == "" {
			id, tokens = strconv.FormatInt(s.Agent.ID, 10), strconv.Itoa(len(s.Tokens))
		}
		if s.KAS != nil && s.KAS.Version != "" {
			kas = s.KAS.Version
		}
		if cs := s.Cluster; cs != nil {
			agentk, ready, ns = cs.Version, fmt.Sprintf("%d/%d", cs.Ready, cs.Desired), cs.Namespace
		}
		if s.Doctor != nil {
			doc = s.Doctor.Verdict
		}
		t.Rows = append(t.Rows, []ui.Cell{ui.C(s.Agent.Name), ui.C(id), ui.S(s.Verdict, verdictStyle[s.Verdict]),
			ui.C(agentk), ui.C(kas), ui.C(ready), ui.C(ns), ui.C(tokens), ui.C(doc)})
	}
	return t
}

// Names are the agents as agent/NAME.
func (r statusResult) Names() []string {
	names := make([]string, len(r.Agents))
	for i, s := range r.Agents {
		names[i] = "agent/" + s.Agent.Name
	}
	return names
}

// ItemsField is the document's list of agents.
func (statusResult) ItemsField() string { return "agents" }

// WriteText writes a screen per agent.
func (r statusResult) WriteText(w io.Writer, p *ui.Painter) error {
	now := time.Now()
	verdictStyle := map[string]ui.Style{install.Connected: ui.Good, install.Installed: ui.Good, install.NotConnected: ui.Warn, install.NotInstalled: ui.Faint}
	var b strings.Builder
	for i, s := range r.Agents {
		if i > 0 {
			b.WriteString("\n")
		}
		// Values come from GitLab and the cluster: printed inert.
		row := func(k, v string) { fmt.Fprintf(&b, "%-10s %s\n", k, safetext.Line(v)) }
		switch {
		case s.GitLabNotAsked != "":
			row("Agent", s.Agent.Name+" (GitLab not asked)")
			if cs := s.Cluster; cs != nil && cs.KasAddress != "" {
				row("KAS", cs.KasAddress+" (as agentk is given it)")
			}
		default:
			row("Agent", fmt.Sprintf("%s (id %d) in %s", s.Agent.Name, s.Agent.ID, s.Agent.ConfigProject))
			row("KAS", fmt.Sprintf("%s, version %s (Kubernetes API proxy %s)", s.KAS.AgentURL, s.KAS.Version, s.KAS.ProxyURL))
			if u := s.Receptive; u != nil {
				row("Receptive", fmt.Sprintf("KAS dials the agent at %s (URL configuration %d)", u.URL, u.ID))
			}
			if len(s.Tokens) == 0 {
				row("Tokens", "none active")
			}
		}
		for j, t := range s.Tokens {
			k := ""
			if j == 0 {
				k = "Tokens"
			}
			row(k, fmt.Sprintf("%s %q, created %s ago, last used %s", strconv.FormatInt(t.ID, 10), t.Name, ui.Age(t.CreatedAt, now), ui.Ago(t.LastUsedAt, now)))
		}
		if cs := s.Cluster; cs != nil {
			row("Cluster", fmt.Sprintf("Deployment %s/%s: %d/%d ready, agentk %s", cs.Namespace, cs.Deployment, cs.Ready, cs.Desired, cs.Version))
		} else {
			row("Cluster", "not found in the current cluster")
		}
		verdict := p.Paint(s.Verdict, verdictStyle[s.Verdict])
		fmt.Fprintf(&b, "%-10s %s\n", "Verdict", verdict) // our own word, maybe coloured
		for _, w := range s.Warnings {
			row("Warning", w)
		}
		if d := s.Doctor; d != nil && d.Verdict != doctor.Healthy {
			var parts []string
			if len(d.Failed) > 0 {
				parts = append(parts, "failing "+strings.Join(d.Failed, ", "))
			}
			if len(d.Warned) > 0 {
				parts = append(parts, "warning "+strings.Join(d.Warned, ", "))
			}
			row("Doctor", fmt.Sprintf("%s (%s): run kubectl gitlab-agent doctor %s", d.Verdict, strings.Join(parts, "; "), s.Agent.Name))
		}
	}
	_, err := fmt.Fprint(w, b.String())
	return err
}
