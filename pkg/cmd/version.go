package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/version"
)

// VersionOptions prints the build's version.
type VersionOptions struct {
	Global *GlobalOptions
	format string
	genericiooptions.IOStreams
}

// NewCmdVersion builds `version`.
func NewCmdVersion(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{Global: g, IOStreams: streams}
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, commit and build date",
		Example: `  kubectl gitlab-agent version
  kubectl gitlab-agent version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
}

// Complete checks the output format.
func (o *VersionOptions) Complete() error {
	f, err := outputFormat(o.Global, "text", "json", "yaml")
	o.format = f
	return err
}

// Run prints the version.
func (o *VersionOptions) Run(_ context.Context) error {
	info := version.Get()
	switch o.format {
	case "json":
		return ui.PrintJSON(o.Out, info)
	case "yaml":
		return ui.PrintYAML(o.Out, info)
	}
	_, err := fmt.Fprintf(o.Out, "kubectl-gitlab-agent %s (commit %s, built %s, %s %s)\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
	return err
}
