package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manDate is the date printed in the man pages' footer. It is fixed so that
// regenerating the pages changes them only when a command changes.
var manDate = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// kubectlCompleteScript lets `kubectl gitlab-agent <TAB>` complete: kubectl
// 1.26+ runs kubectl_complete-<plugin> from PATH for a plugin's arguments.
const kubectlCompleteScript = `#!/usr/bin/env sh
# Shell completion for 'kubectl gitlab-agent' (kubectl 1.26+ runs this file).
exec kubectl-gitlab_agent __complete "$@"
`

// NewCmdGenerate builds the hidden `__generate DIR` that writes DIR/docs
// (a markdown page per command and man pages) and DIR/completions.
func NewCmdGenerate(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "__generate DIR",
		Short:  "Write the generated docs and completion scripts under DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Generate(root, args[0])
		},
	}
}

// Generate writes docs/ and completions/ under dir.
func Generate(root *cobra.Command, dir string) error {
	docsDir := filepath.Join(dir, "docs")
	manDir := filepath.Join(docsDir, "man")
	complDir := filepath.Join(dir, "completions")
	for _, d := range []string{docsDir, manDir, complDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	// kubectl's --cache-dir default is under the home directory of whoever
	// generates; the docs show it as kubectl's own docs do.
	if f := root.PersistentFlags().Lookup("cache-dir"); f != nil {
		f.DefValue = "$HOME/.kube/cache"
	}
	if err := doc.GenMarkdownTree(root, docsDir); err != nil {
		return fmt.Errorf("writing markdown docs: %w", err)
	}
	header := &doc.GenManHeader{Title: "KUBECTL-GITLAB-AGENT", Section: "1", Date: &manDate, Source: "kubectl-gitlab-agent"}
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	scripts := map[string]func(f *os.File) error{
		"kubectl-gitlab_agent.bash": func(f *os.File) error { return root.GenBashCompletionV2(f, true) },
		"kubectl-gitlab_agent.zsh":  func(f *os.File) error { return root.GenZshCompletion(f) },
		"kubectl-gitlab_agent.fish": func(f *os.File) error { return root.GenFishCompletion(f, true) },
		"kubectl-gitlab_agent.ps1":  func(f *os.File) error { return root.GenPowerShellCompletionWithDesc(f) },
	}
	for name, gen := range scripts {
		if err := writeWith(filepath.Join(complDir, name), 0o644, gen); err != nil {
			return err
		}
	}
	return writeWith(filepath.Join(complDir, "kubectl_complete-gitlab_agent"), 0o755, func(f *os.File) error {
		_, err := f.WriteString(kubectlCompleteScript)
		return err
	})
}

func writeWith(path string, mode os.FileMode, gen func(f *os.File) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := gen(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
