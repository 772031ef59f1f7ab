package install

import (
	"context"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// KAS's version maps to an agentk release that exists: the release it is,
// or for a pre-release the newest release certain to be before it; never a
// tag made of a suffix.
func TestAgentRelease(t *testing.T) {
	for _, tt := range []struct {
		kas     string
		tag     string
		pre, ok bool
	}{
		{"19.6.0", "v19.6.0", false, true},
		{"v19.6.0", "v19.6.0", false, true},
		{"19.6.1", "v19.6.1", false, true},
		{"19.6.1-ee", "v19.6.1", false, true},
		{"19.6.1-EE", "v19.6.1", false, true},
		{"19.6.0+8f3a2c1", "v19.6.0", false, true},
		{"19.6.1-ee+build.7", "v19.6.1", false, true},
		// A pre-release of X.Y.0: X.Y is not out; the minor before is.
		{"19.7.0-rc42", "v19.6.0", true, true},
		{"19.7.0-pre", "v19.6.0", true, true},
		{"19.7.0-rc42+abc", "v19.6.0", true, true},
		{"19.7.0-rc1-ee", "v19.6.0", true, true},
		{"19.7.0-ee-rc1", "v19.6.0", true, true},
		// Across a major version: 17.11 came before 18.0, 16.11 before 17.0.
		{"18.0.0-rc1", "v17.11.0", true, true},
		{"17.0.0-pre", "v16.11.0", true, true},
		{"20.0.0-rc3", "v19.11.0", true, true},
		// A pre-release of a patch: the minor's first release is certain.
		{"19.6.2-rc1", "v19.6.0", true, true},
		// Not a version: no release.
		{"", "", false, false},
		{"19.6", "", false, false},
		{"8f3a2c1", "", false, false},
		{"v19.x.0", "", false, false},
		{"0.0.0-rc1", "", true, false},
	} {
		tag, pre, ok := AgentRelease(tt.kas)
		if tag != tt.tag || pre != tt.pre || ok != tt.ok {
			t.Errorf("AgentRelease(%q) = %q, %v, %v; want %q, %v, %v", tt.kas, tag, pre, ok, tt.tag, tt.pre, tt.ok)
		}
	}
}

// The line says which version and why; a suffixed KAS version says which
// release it became, and a KAS newer than the chart says the layout stays.
func TestChooseVersion(t *testing.T) {
	load := func(sets ...string) manifest.Input {
		var srcs []manifest.Source
		for _, s := range sets {
			src, err := manifest.ParseSet(s)
			if err != nil {
				t.Fatal(err)
			}
			srcs = append(srcs, src)
		}
		v, err := manifest.Load(srcs...)
		if err != nil {
			t.Fatal(err)
		}
		return manifest.Input{Name: "prod", Values: v, Set: manifest.SetKeys(srcs...)}
	}
	kas := func(v string) *gitlab.KAS {
		return &gitlab.KAS{AgentURL: "wss://gitlab.example.com/-/kubernetes-agent/", Version: v}
	}
	for _, tt := range []struct {
		name   string
		in     manifest.Input
		kas    string
		tag    string
		source string
		line   []string
	}{
		{"release", load(), "19.6.0", "v19.6.0", VersionFromKAS,
			[]string{"agentk v19.6.0: the version of KAS at gitlab.example.com; the objects keep chart 2.15.0's layout (agentk v18.0.0, the newest chart followed): only the image is newer"}},
		{"same as the chart", load(), "18.0.0", "v18.0.0", VersionFromKAS, []string{"agentk v18.0.0: the version of KAS at gitlab.example.com"}},
		{"edition", load(), "19.6.1-ee", "v19.6.1", VersionFromKAS, []string{"agentk v19.6.1: the release of KAS at gitlab.example.com, which gives its version as 19.6.1-ee"}},
		{"pre-release", load(), "19.7.0-rc42", "v19.6.0", VersionFromKAS,
			[]string{"agentk v19.6.0: KAS at gitlab.example.com runs 19.7.0-rc42, a pre-release of 19.7.0; v19.6.0 is the newest release certain to exist before it (--agent-version picks a later patch)"}},
		{"older KAS", load(), "17.3.1", "v17.3.1", VersionFromKAS, []string{"agentk v17.3.1: the version of KAS at gitlab.example.com"}},
		{"no version", load(), "", "v18.0.0", VersionChart, []string{"agentk v18.0.0: chart 2.15.0's agentk, as GitLab does not say KAS's version"}},
		{"no release", load(), "8f3a2c1", "v18.0.0", VersionChart, []string{`agentk v18.0.0: chart 2.15.0's agentk, as KAS at gitlab.example.com gives the version "8f3a2c1", which names no release`}},
		{"set", load("image.tag=v19.5.2"), "19.6.0", "v19.5.2", VersionSet, []string{"agentk v19.5.2: as given (--agent-version or image.tag); KAS at gitlab.example.com is 19.6.0"}},
		{"set, skewed", load("image.tag=v19.2.0"), "19.6.0", "v19.2.0", VersionSet, []string{"more than one minor version behind KAS 19.6.0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			v := chooseVersion(&in, kas(tt.kas))
			if v.Tag != tt.tag || v.Source != tt.source || v.KAS != tt.kas || v.Chart != "2.15.0" {
				t.Errorf("got %+v", v)
			}
			if want := tt.tag; in.Values.Image.Tag != want && !(tt.source == VersionChart && in.Values.Image.Tag == "") {
				t.Errorf("image.tag %q, want %q", in.Values.Image.Tag, want)
			}
			for _, s := range tt.line {
				if !strings.Contains(v.Line(), s) {
					t.Errorf("line %q lacks %q", v.Line(), s)
				}
			}
		})
	}
}

// Against a GitLab whose KAS is 19.6.0 (or a suffixed version of it),
// install deploys the release that version belongs to, and says which and
// why; a dry run plans the same.
func TestInstallFollowsKASVersion(t *testing.T) {
	for _, tt := range []struct{ kas, tag, why string }{
		{"19.6.0", "v19.6.0", "agentk v19.6.0: the version of KAS at kas.example.com; the objects keep chart 2.15.0's layout"},
		{"19.7.0-rc42", "v19.6.0", "agentk v19.6.0: KAS at kas.example.com runs 19.7.0-rc42, a pre-release of 19.7.0; v19.6.0 is the newest release"},
		{"19.6.1-ee", "v19.6.1", "agentk v19.6.1: the release of KAS at kas.example.com, which gives its version as 19.6.1-ee"},
	} {
		t.Run(tt.kas, func(t *testing.T) {
			w := newWorld(t)
			w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = tt.kas })
			o := w.opts("prod")
			o.DryRun = DryRunClient
			plan, err := Install(context.Background(), w.env(), InstallOptions{Options: o})
			if err != nil || plan.Plan == nil || plan.Plan.Agentk == nil || plan.Plan.Agentk.Tag != tt.tag || !strings.Contains(plan.Plan.Agentk.Line(), tt.why) {
				t.Fatalf("dry run: %v, %+v", err, plan.Plan)
			}
			if strings.Contains(w.report.text(), "agentk v") {
				t.Errorf("a dry run said the version beside its plan:\n%s", w.report.text())
			}
			res := w.install(t, "prod")
			if res.Agentk == nil || res.Agentk.Tag != tt.tag || res.Agentk.Source != VersionFromKAS || res.Agentk.KAS != tt.kas {
				t.Errorf("agentk %+v, want %s from KAS %s", res.Agentk, tt.tag, tt.kas)
			}
			d, _ := w.cluster.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent-v2")
			if d == nil || RunningOf(d).Version != tt.tag {
				t.Fatalf("deployed %+v, want agentk %s", d, tt.tag)
			}
			if !strings.Contains(w.report.text(), "step: "+tt.why) {
				t.Errorf("install did not say %q:\n%s", tt.why, w.report.text())
			}
		})
	}
}
