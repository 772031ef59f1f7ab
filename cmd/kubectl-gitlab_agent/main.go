// Command kubectl-gitlab_agent is the kubectl plugin for GitLab's agent for
// Kubernetes. kubectl runs it for `kubectl gitlab-agent ...`.
package main

import (
	"os"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args[1:], cmd.DefaultStreams()))
}
