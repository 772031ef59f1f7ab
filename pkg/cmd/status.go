package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// StatusOptions reports on agents in GitLab and in the current cluster.
type StatusOptions struct {
	gitlabCommand
	Factory Factory
	Kube    *genericclioptions.ConfigFlags
	names   []string
	env     install.Env
}

// NewCmdStatus builds `status [NAME]`.
func NewCmdStatus(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{gitlabCommand: newGitLabCommand(g, streams, "table", "json", "yaml"), Factory: f}
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show an agent's registration, tokens, KAS, in-cluster state and whether it is connected",
		Long: `One screen per agent (every agent of the project without NAME): its
registration, its tokens and their last use, KAS's address and version, the
agent's Deployment in the current cluster with agentk's version and its skew
from KAS, and a verdict: connected, installed-but-not-connected or not
installed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runOptions(o),
	}
	o.addFlags(cmd, true)
	o.Kube = newKubeFlags(cmd)
	return cmd
}

// Complete checks the names and connects; without a cluster the GitLab part
// is still shown.
func (o *StatusOptions) Complete(_ *cobra.Command, args []string) error {
	for _, a := range args {
		if err := agentname.Validate(a); err != nil {
			return err
		}
	}
	o.names = args
	if err := o.complete(); err != nil {
		return err
	}
	o.env = install.Env{GitLab: o.client}
	c, err := o.Factory.Cluster(o.Kube)
	if err != nil {
		fmt.Fprintf(o.ErrOut, "warning: no cluster to look at (%v)\n", err)
		return nil
	}
	o.env.Cluster = c
	return nil
}

// Run reports.
func (o *StatusOptions) Run(ctx context.Context) error {
	st, err := install.Status(ctx, o.env, o.project, o.names)
	if err != nil {
		return err
	}
	if done, err := o.Output.PrintDocument(o.Out, map[string]any{"agents": st}); done {
		return err
	}
	return o.print(st)
}

func (o *StatusOptions) print(st []*install.AgentStatus) error {
	p := ui.NewPainter(o.Out, o.color())
	now := time.Now()
	verdictStyle := map[string]ui.Style{install.Connected: ui.Good, install.NotConnected: ui.Warn, install.NotInstalled: ui.Faint}
	var b strings.Builder
	for i, s := range st {
		if i > 0 {
			b.WriteString("\n")
		}
		// Values come from GitLab and the cluster: printed inert.
		row := func(k, v string) { fmt.Fprintf(&b, "%-10s %s\n", k, safetext.Line(v)) }
		row("Agent", fmt.Sprintf("%s (id %d) in %s", s.Agent.Name, s.Agent.ID, s.Agent.ConfigProject))
		row("KAS", fmt.Sprintf("%s, version %s (Kubernetes API proxy %s)", s.KAS.AgentURL, s.KAS.Version, s.KAS.ProxyURL))
		if len(s.Tokens) == 0 {
			row("Tokens", "none active")
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
	}
	_, err := fmt.Fprint(o.Out, b.String())
	return err
}
