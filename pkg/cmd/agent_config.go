package cmd

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// newCmdAgentConfig builds `agent config`; its show and set commands come
// with pkg/agentconfig.
func newCmdAgentConfig(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Show and edit the agent's config file .gitlab/agents/NAME/config.yaml",
	}
}
