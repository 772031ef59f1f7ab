package cmd

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// Shell completion of flag values and arguments (cobra's __complete, which
// the scripts of `completion` and kubectl's plugin completion call). -o and
// --dry-run complete where they are bound (OutputFlags, dryRunFlag); the
// flags below are completed wherever a command has them.

// completionTimeout bounds what a completion asks GitLab: a shell waits for
// the answer, and no names is better than a stuck prompt.
var completionTimeout = 2 * time.Second

// registerFlagCompletions completes, on every command under root that has
// them, --chart-version with the chart versions followed and kubectl's
// --context, --cluster and --user with the kubeconfig's entries.
func registerFlagCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("chart-version") != nil {
			versions := make([]string, len(manifest.Charts))
			for i, ch := range manifest.Charts {
				versions[i] = ch.Version
			}
			_ = c.RegisterFlagCompletionFunc("chart-version", cobra.FixedCompletions(versions, cobra.ShellCompDirectiveNoFileComp))
		}
		if c.Flags().Lookup("kubeconfig") != nil {
			for _, flag := range []string{"context", "cluster", "user"} {
				if c.Flags().Lookup(flag) != nil {
					_ = c.RegisterFlagCompletionFunc(flag, kubeconfigEntries(flag))
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// kubeconfigEntries completes --context, --cluster or --user with the
// names in the kubeconfig the command would read (--kubeconfig, else
// $KUBECONFIG, else ~/.kube/config), as kubectl does.
func kubeconfigEntries(flag string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if f := cmd.Flags().Lookup("kubeconfig"); f != nil {
			rules.ExplicitPath = f.Value.String()
		}
		cfg, err := rules.Load()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		switch flag {
		case "context":
			for n := range cfg.Contexts {
				names = append(names, n)
			}
		case "cluster":
			for n := range cfg.Clusters {
				names = append(names, n)
			}
		case "user":
			for n := range cfg.AuthInfos {
				names = append(names, n)
			}
		}
		return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// agentNames completes the first argument with the names of the project's
// agents (the project and GitLab the command's flags name), when a
// credential that may list them is at hand; within completionTimeout, or
// nothing.
func agentNames(f Factory, g *GitLabFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		creds, err := g.Credentials()
		if err != nil || creds.Token == "" { // a CI job's token may not list agents
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ref, err := g.ProjectRef(io.Discard)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		client, err := f.GitLab(gitlab.Options{URL: g.ResolvedURL(), Credentials: creds, CallTimeout: completionTimeout})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		agents, err := client.ListAgents(ctx, ref)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, a := range agents {
			// GitLab's answer goes on the user's command line: only a
			// name GitLab could have given.
			if agentname.Validate(a.Name) == nil {
				names = append(names, a.Name)
			}
		}
		return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// withPrefix is names that start with prefix, sorted.
func withPrefix(names []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
