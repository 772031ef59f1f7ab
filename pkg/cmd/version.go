package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/version"
)

// VersionOptions prints the build's version.
type VersionOptions struct {
	outputOnly
	genericiooptions.IOStreams
}

// NewCmdVersion builds `version`.
func NewCmdVersion(streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{outputOnly: outputOnly{NewOutputFlags("text", "json", "yaml")}, IOStreams: streams}
	return o.command(o, &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, commit and build date",
		Example: `  kubectl gitlab-agent version
  kubectl gitlab-agent version -o json`,
	})
}

// Run prints the version.
func (o *VersionOptions) Run(_ context.Context) error {
	info := version.Get()
	if done, err := o.Output.PrintDocument(o.Out, info); done {
		return err
	}
	_, err := fmt.Fprintf(o.Out, "kubectl-gitlab-agent %s (commit %s, built %s, %s %s)\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
	return err
}
