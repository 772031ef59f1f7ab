package cmd

import (
	"context"
	"net"
	"net/http"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
)

// realOutside is the part of a test Factory that reaches the test's fake
// GitLab and KAS as the real Factory would.
type realOutside struct{}

func (realOutside) GitLab(o gitlab.Options) (*gitlab.Client, error) { return newGitLab(o) }

func (realOutside) HTTPClient() *http.Client { return DefaultFactory().HTTPClient() }

func (realOutside) KASDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return DefaultFactory().KASDialer()
}
