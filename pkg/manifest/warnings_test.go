package manifest

import (
	"strings"
	"testing"
)

func TestKASAddressProblem(t *testing.T) {
	for addr, want := range map[string]string{
		"wss://kas.gitlab.com":                      "",
		"WSS://kas.example.com/-/kubernetes-agent/": "",
		"grpcs://kas.example.com:8150":              "",
		"kas.gitlab.com":                            "is not a URL",
		"kas.example.com:443":                       "is not a URL",
		"":                                          "is not a URL",
		"ws://kas.example.com":                      "not encrypted (ws://)",
		"grpc://kas.example.com:8150":               "not encrypted (grpc://)",
		"https://kas.example.com":                   `the scheme "https"`,
		"wss://kas.example.com/\x1b[31m":            "is not a URL",
		"wss://\x1b[31m":                            "is not a URL",
	} {
		got := KASAddressProblem(addr)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("KASAddressProblem(%q) = %q, want %q", addr, got, want)
		}
		if strings.ContainsAny(got, "\x1b\n") {
			t.Errorf("KASAddressProblem(%q) = %q: raw control characters", addr, got)
		}
	}
}

func TestMissingTokenNote(t *testing.T) {
	in := Input{Name: "prod", Namespace: "gitlab-agent-prod"}
	if got := MissingTokenNote(in); !strings.Contains(got, "Secret gitlab-agent-prod/prod-gitlab-agent-token") || !strings.Contains(got, "--token-file") {
		t.Errorf("no token: %q", got)
	}
	in.Values.Config.Token = "glagent-x"
	if got := MissingTokenNote(in); got != "" {
		t.Errorf("an embedded token: %q", got)
	}
	in.Values.Config.Token, in.Values.Config.SecretName = "", "mine"
	if got := MissingTokenNote(in); got != "" {
		t.Errorf("the user's Secret: %q", got)
	}
}
