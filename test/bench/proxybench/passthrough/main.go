// Command passthrough runs the plugin's proxy code (pkg/tunnel) straight
// against an apiserver, with a fixed bearer token, so that proxybench can set
// it beside `kubectl proxy` on the same path without KAS in between.
//
//	passthrough TARGET_URL CA_FILE   (token in PASSTHROUGH_TOKEN)
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: passthrough TARGET_URL CA_FILE")
		os.Exit(2)
	}
	token := os.Getenv("PASSTHROUGH_TOKEN")
	ca, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := tunnel.NewProxy(tunnel.ProxyOptions{
		Target: os.Args[1], CA: ca, AcceptHosts: tunnel.DefaultAcceptHosts, Log: os.Stderr,
		Credential: func(context.Context, bool) (string, error) { return token, nil },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("Starting to serve on %s\n", l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_ = p.Serve(ctx, l)
}
