package manifest

import (
	"fmt"
	"net/url"
	"strings"
)

// KASAddressProblem says, in one line, what is wrong with the KAS address
// agentk is to dial ("" nothing): agentk dials wss:// or grpcs:// URLs
// (ws:// and grpc:// are cleartext). The address is quoted as Go quotes it,
// so nothing in it reaches a terminal raw.
func KASAddressProblem(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || !strings.Contains(addr, "://") || u.Host == "" {
		return fmt.Sprintf("the KAS address %q is not a URL: agentk dials wss://HOST[/PATH] or grpcs://HOST:PORT (GitLab.com: wss://kas.gitlab.com; install finds yours in GitLab's /metadata)", addr)
	}
	switch strings.ToLower(u.Scheme) {
	case "wss", "grpcs":
		return ""
	case "ws", "grpc":
		return fmt.Sprintf("the KAS address %q is not encrypted (%s://): the agent token would cross the network in cleartext; use wss:// or grpcs://", addr, u.Scheme)
	}
	return fmt.Sprintf("the KAS address %q has the scheme %q, which agentk cannot dial: use wss:// or grpcs://", addr, u.Scheme)
}

// MissingTokenNote says, in one line, which Secret the objects mount when
// the input embeds no token and names no Secret of the user's ("" when it
// does either): that Secret must exist before the objects are applied.
func MissingTokenNote(in Input) string {
	if in.Values.Config.Token != "" || in.Values.Config.SecretName != "" {
		return ""
	}
	return fmt.Sprintf("no token given: the objects mount Secret %s/%s (key token), which must exist before they are applied; --token-file FILE embeds one, install makes one", in.Namespace, SecretName(in))
}
