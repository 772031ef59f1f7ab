package gitlab

import (
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
)

func TestParseProject(t *testing.T) {
	for in, want := range map[string]ProjectRef{
		"42":                   {ID: 42},
		"infra/agents":         {Path: "infra/agents"},
		"group/sub/proj":       {Path: "group/sub/proj"},
		"/group/proj/":         {Path: "group/proj"},
		"my.group/proj-1.git":  {Path: "my.group/proj-1"},
		"Group_A/Project.Name": {Path: "Group_A/Project.Name"},
	} {
		got, err := ParseProject(in)
		if err != nil || got != want {
			t.Errorf("ParseProject(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-3", "proj", "a//b", "a/../b", "a/b c", "https://gitlab.com/a/b", "-a/b"} {
		if _, err := ParseProject(bad); err == nil {
			t.Errorf("ParseProject(%q) succeeded", bad)
		}
	}
}

func TestParseAgentRef(t *testing.T) {
	for in, want := range map[string]AgentRef{
		"prod-eu": {Name: "prod-eu"},
		"42":      {Name: "42", ID: 42},
		"a1":      {Name: "a1"},
	} {
		if got, err := ParseAgentRef(in); err != nil || got != want {
			t.Errorf("ParseAgentRef(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"Prod_EU", "", "-x", "x-", "a_b"} {
		if _, err := ParseAgentRef(bad); err == nil {
			t.Errorf("ParseAgentRef(%q) succeeded", bad)
		}
	}
}

func FuzzParseProject(f *testing.F) {
	for _, s := range []string{"42", "a/b", "a/b/c.git", "", "../x", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseProject(s)
		if err != nil {
			return
		}
		if (ref.ID == 0) == (ref.Path == "") {
			t.Fatalf("ParseProject(%q) = %+v: want exactly one of ID and path", s, ref)
		}
		if again, err := ParseProject(ref.String()); err != nil || again != ref {
			t.Fatalf("round trip of %q: %+v %v", s, again, err)
		}
	})
}

func FuzzParseAgentRef(f *testing.F) {
	for _, s := range []string{"prod", "42", "Prod_EU", "a-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseAgentRef(s)
		if err != nil {
			return
		}
		if ref.Name != "" && agentname.Validate(ref.Name) != nil {
			t.Fatalf("accepted invalid name %q", ref.Name)
		}
	})
}
