// Command testbin builds the test control plane and the test Flux into their
// caches (if needed) and prints the directories, one a line. `make test` runs
// it first so that a cold build is not counted against go test's timeout.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, ensure := range []func(context.Context, io.Writer) (string, error){cluster.EnsureBinaries, cluster.EnsureFlux} {
		dir, err := ensure(ctx, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		fmt.Println(dir)
	}
}
