package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// CompletionOptions prints a shell's completion script.
type CompletionOptions struct {
	genericiooptions.IOStreams
	shell string
	root  *cobra.Command
}

// NewCmdCompletion builds `completion SHELL`.
func NewCmdCompletion(streams genericiooptions.IOStreams) *cobra.Command {
	o := &CompletionOptions{IOStreams: streams}
	return leaf(o, cobra.MatchAll(exactArgs(1, "SHELL"), cobra.OnlyValidArgs), &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script",
		Long: `Print the completion script for a shell: load it as the examples show, in the
shell's startup file to keep it.

For 'kubectl gitlab-agent <TAB>' (kubectl 1.26+), put the script
kubectl_complete-gitlab_agent from the release archive on your PATH: kubectl
runs it for a plugin's arguments. The scripts below complete the plugin's
binary, kubectl-gitlab_agent, run by itself.`,
		Example: `  # bash (needs the bash-completion package), in ~/.bashrc:
  source <(kubectl-gitlab_agent completion bash)

  # zsh, in ~/.zshrc (after compinit):
  source <(kubectl-gitlab_agent completion zsh)

  # fish, in ~/.config/fish/config.fish:
  kubectl-gitlab_agent completion fish | source

  # PowerShell, in $PROFILE:
  kubectl-gitlab_agent completion powershell | Out-String | Invoke-Expression`,
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		DisableFlagsInUseLine: true,
	})
}

// Complete takes the shell and the command tree to complete.
func (o *CompletionOptions) Complete(cmd *cobra.Command, args []string) error {
	o.shell, o.root = args[0], cmd.Root()
	return nil
}

// Validate has nothing to check: cobra's Args took only the shells known.
func (o *CompletionOptions) Validate() error { return nil }

// Run writes the script.
func (o *CompletionOptions) Run(context.Context) error {
	return writeCompletion(o.root, o.shell, o.IOStreams)
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
