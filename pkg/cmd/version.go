package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
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
	return o.Output.Print(o.Out, true, versionResult{version.Get()}) // never coloured
}

// versionResult is what version prints: the build's description.
type versionResult struct{ version.Info }

// WriteText writes the description on one line.
func (r versionResult) WriteText(w io.Writer, _ *ui.Painter) error {
	_, err := fmt.Fprintf(w, "kubectl-gitlab-agent %s (commit %s, built %s, %s %s)\n",
		r.Version, r.Commit, r.Date, r.GoVersion, r.Platform)
	return err
}
