// Command testbin builds the test control plane into its cache (if needed) and
// prints the directory. `make test` runs it first so that a cold build is not
// counted against go test's timeout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := cluster.EnsureBinaries(ctx, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}
