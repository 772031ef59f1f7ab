// Package layers checks that the packages import only what
// docs/architecture.md allows, so that the layering does not drift.
package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/"

// allowed lists, for each package under pkg/, the packages of ours it may
// import (docs/architecture.md, "Layers").
var allowed = map[string][]string{
	"pkg/cmd":         {"*"},
	"pkg/doctor":      {"pkg/agentconfig", "pkg/gitlab", "pkg/install", "pkg/kube", "pkg/manifest"},
	"pkg/install":     {"pkg/agentconfig", "pkg/diff", "pkg/flux", "pkg/gitops", "pkg/gitlab", "pkg/kube", "pkg/manifest"},
	"pkg/flux":        {"pkg/kube"},
	"pkg/apps":        {"pkg/diff", "pkg/flux", "pkg/fluxbuild", "pkg/gitlab", "pkg/gitremote", "pkg/kube", "pkg/safetext"},
	"pkg/fluxbuild":   {"pkg/input", "pkg/kube", "pkg/safetext"},
	"pkg/gitops":      {"pkg/manifest"},
	"pkg/fleet":       {"pkg/agentname"},
	"pkg/diff":        {"pkg/kube", "pkg/memo", "pkg/safetext", "pkg/secretfile"},
	"pkg/tunnel":      {"pkg/agentname", "pkg/gitlab", "pkg/input", "pkg/safetext", "pkg/secretfile"},
	"pkg/kube":        {"pkg/input", "pkg/memo"},
	"pkg/kube/fake":   {"pkg/kube"},
	"pkg/gitlab":      {"pkg/agentname", "pkg/input", "pkg/safetext"},
	"pkg/manifest":    {"pkg/agentname"},
	"pkg/ui":          {"pkg/safetext"},
	"pkg/agentconfig": {},
	"pkg/agentname":   {},
	"pkg/gitremote":   {},
	"pkg/input":       {},
	"pkg/memo":        {},
	"pkg/safetext":    {},
	"pkg/secretfile":  {},
	"pkg/version":     {},
}

func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../../pkg/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("%s is not in docs/architecture.md's table: add it there and here", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if imp == "github.com/spf13/cobra" && pkg != "pkg/cmd" {
				t.Errorf("%s imports cobra: only pkg/cmd may", pkg)
			}
			ours, isOurs := strings.CutPrefix(imp, module)
			if !isOurs || slices.Contains(rules, "*") {
				continue
			}
			if strings.HasPrefix(ours, "test/") || !slices.Contains(rules, ours) {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow", pkg, ours)
			}
		}
	}
}

// neverBelow lists, for a package, packages of ours it must not depend on
// even through others (go list -deps): the in-memory cluster serves
// pkg/diff and pkg/install, so it needs nothing of them (diff.Cluster
// speaks pkg/kube's types), and no import arrow runs back up a layer.
var neverBelow = map[string][]string{
	"pkg/kube/fake": {"pkg/diff", "pkg/install", "pkg/gitlab"},
	"pkg/kube":      {"pkg/diff", "pkg/install", "pkg/gitlab"},
	"pkg/fluxbuild": {"pkg/diff", "pkg/install", "pkg/gitlab"},
}

func TestNeverBelow(t *testing.T) {
	for pkg, never := range neverBelow {
		out, err := exec.Command("go", "list", "-deps", "../../"+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, n := range never {
			if slices.Contains(deps, module+n) {
				t.Errorf("%s depends on %s (go list -deps %s): it must not, even through another package", pkg, n, pkg)
			}
		}
	}
}

// heavy are packages that cost the build far more than the use made of them:
// client-go's Clientset compiles a typed client and apply configurations for
// every API group (test/cluster's Clients has the two groups the tests use).
var heavy = map[string]string{
	"k8s.io/client-go/kubernetes": "use test/cluster.Clients, or the group's typed client",
}

func TestNoHeavyImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", `{{.ImportPath}}|{{join .Imports " "}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		pkg, _, _ = strings.Cut(pkg, " ") // "p [p.test]" is p compiled with its tests
		for _, imp := range strings.Fields(imports) {
			if why, ok := heavy[imp]; ok && !seen[pkg+" "+imp] {
				seen[pkg+" "+imp] = true
				t.Errorf("%s imports %s: %s", pkg, imp, why)
			}
		}
	}
}
