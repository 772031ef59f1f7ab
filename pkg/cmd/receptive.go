package cmd

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// receptiveFlags make install's agent receptive: KAS dials it (GitLab
// Ultimate, self-managed, 17.4 and later).
type receptiveFlags struct {
	URL     string
	CAFile  string
	TLSHost string
	Replace bool
	ca      string // CAFile's content
}

func (f *receptiveFlags) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.URL, "receptive-url", "", "make the agent receptive: KAS dials it at this grpcs://HOST:PORT (or grpc://) instead of agentk dialling KAS (GitLab Ultimate 17.4+, self-managed)")
	fl.StringVar(&f.CAFile, "receptive-ca-file", "", "with --receptive-url grpcs://: the CA (PEM) KAS verifies the agent's certificate with")
	fl.StringVar(&f.TLSHost, "receptive-tls-host", "", "with --receptive-url grpcs://: the host name KAS expects in the agent's certificate")
	fl.BoolVar(&f.Replace, "receptive-replace", false, "replace the agent's URL configuration when it says other than --receptive-url and its flags (GitLab makes a new key pair; agentk's pods roll)")
}

// complete reads the CA file.
func (f *receptiveFlags) complete(ctx context.Context) error {
	if f.CAFile == "" {
		return nil
	}
	b, err := input.ReadFile(ctx, f.CAFile, nil, input.MaxCA, "--receptive-ca-file")
	if err != nil {
		return err
	}
	f.ca = string(b)
	return nil
}

// validate checks the flags against each other and the values in: GitLab
// accepts grpc and grpcs URLs, and the key is GitLab's to give.
func (f *receptiveFlags) validate(in manifest.Input) error {
	if f.URL == "" {
		if f.CAFile != "" || f.TLSHost != "" || f.Replace {
			return fmt.Errorf("--receptive-ca-file, --receptive-tls-host and --receptive-replace go with --receptive-url")
		}
		return nil
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "grpc" && u.Scheme != "grpcs") || u.Hostname() == "" || u.User != nil ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("--receptive-url %q: want grpcs://HOST:PORT (or grpc://HOST:PORT without TLS), where KAS reaches agentk's API", f.URL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--receptive-url %q: the port must be 1 to 65535", f.URL)
		}
	}
	if u.Scheme == "grpc" && (f.CAFile != "" || f.TLSHost != "") {
		return fmt.Errorf("--receptive-ca-file and --receptive-tls-host are for grpcs:// URLs, not %s", f.URL)
	}
	if h := f.TLSHost; h != "" && net.ParseIP(h) == nil && len(validation.IsDNS1123Subdomain(strings.ToLower(h))) > 0 {
		return fmt.Errorf("--receptive-tls-host %q: want a host name", h)
	}
	if f.CAFile != "" && !pemCertificates(f.ca) {
		return fmt.Errorf("--receptive-ca-file %s: not PEM certificates", f.CAFile)
	}
	if c, err := manifest.LookupChart(in.Values.Chart); err == nil && !c.Receptive() {
		return fmt.Errorf("--receptive-url: chart %s has no receptive agents (chart 2.15.0 and later have)", c.Version)
	}
	switch {
	case in.Set.Has(manifest.KeyJWTPublicKey):
		return fmt.Errorf("--receptive-url puts GitLab's public key into %s: do not set it", manifest.KeyJWTPublicKey)
	case in.Set.Has(manifest.KeyReceptiveEnabled) && !in.Values.Config.Receptive.Enabled:
		return fmt.Errorf("--receptive-url makes the agent receptive, and %s is false", manifest.KeyReceptiveEnabled)
	}
	return nil
}

// pemCertificates reports whether s holds PEM certificates, and nothing else.
func pemCertificates(s string) bool {
	rest, n := []byte(s), 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); b.Type != "CERTIFICATE" || err != nil {
			return false
		}
		n++
	}
	return n > 0 && strings.TrimSpace(string(rest)) == ""
}

// options are install's, nil without --receptive-url.
func (f *receptiveFlags) options() *install.ReceptiveOptions {
	if f.URL == "" {
		return nil
	}
	return &install.ReceptiveOptions{URL: f.URL, CACert: f.ca, TLSHost: f.TLSHost, Replace: f.Replace}
}
