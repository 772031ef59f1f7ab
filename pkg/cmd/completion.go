package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdCompletion builds `completion SHELL`.
func NewCmdCompletion(streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script",
		Long: `Print the completion script for a shell.

For 'kubectl gitlab-agent <TAB>' (kubectl 1.26+), put the script
kubectl_complete-gitlab_agent from the release archive on your PATH.
For the plugin binary itself:

  source <(kubectl-gitlab_agent completion bash)`,
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeCompletion(cmd.Root(), args[0], streams)
		},
	}
}

func writeCompletion(root *cobra.Command, shell string, streams genericiooptions.IOStreams) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(streams.Out, true)
	case "zsh":
		return root.GenZshCompletion(streams.Out)
	case "fish":
		return root.GenFishCompletion(streams.Out, true)
	case "powershell":
		return root.GenPowerShellCompletionWithDesc(streams.Out)
	}
	return fmt.Errorf("unsupported shell %q: use bash, zsh, fish or powershell", shell)
}
