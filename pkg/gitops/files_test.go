package gitops

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

func TestValidatePathStaysInTheRepository(t *testing.T) {
	for _, bad := range []string{"", " ", ".", "./", "/etc", "/clusters/prod", "../x", "clusters/../../x", "clusters/..", "a/.git/hooks", ".GIT", "C:/x", "a\\b", "a\x00b", "a\nb"} {
		if got, err := ValidatePath(bad); err == nil {
			t.Errorf("ValidatePath(%q) = %q, want an error", bad, got)
		}
	}
	for in, want := range map[string]string{"clusters/prod": "clusters/prod", "./clusters/prod/": "clusters/prod", "clusters//prod": "clusters/prod", "a/./b": "a/b"} {
		if got, err := ValidatePath(in); err != nil || got != want {
			t.Errorf("ValidatePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func render(t *testing.T, tag string) []manifest.Object {
	t.Helper()
	kas, secret := "wss://kas.example.com", "prod-gitlab-agent-token"
	in, err := manifest.Layers{KasAddress: &kas, AgentVersion: &tag, SecretName: &secret}.Input("prod", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := manifest.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	return out.Objects
}

func TestFilesAreStableAndHoldNoSecret(t *testing.T) {
	a, err := Files("prod", "clusters/prod/gitlab-agent", render(t, "v19.6.0"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Files("prod", "clusters/prod/gitlab-agent", render(t, "v19.6.0"))
	if len(a) != len(b) || len(a) < 3 {
		t.Fatalf("%d and %d files", len(a), len(b))
	}
	var names []string
	for i := range a {
		if a[i].Path != b[i].Path || string(a[i].Content) != string(b[i].Content) {
			t.Fatalf("a second render differs at %s", a[i].Path)
		}
		if !strings.HasPrefix(a[i].Path, "clusters/prod/gitlab-agent/") || !Generated(a[i].Content) {
			t.Errorf("%s: outside the directory, or no header", a[i].Path)
		}
		if strings.Contains(string(a[i].Content), "kind: Secret") {
			t.Errorf("%s holds a Secret", a[i].Path)
		}
		names = append(names, a[i].Path[len("clusters/prod/gitlab-agent/"):])
	}
	k := a[len(a)-1]
	if !strings.HasSuffix(k.Path, "/"+Kustomization) {
		t.Fatalf("last file %s, want the kustomization.yaml", k.Path)
	}
	if got := Resources(k.Content); strings.Join(got, ",") != strings.Join(names[:len(names)-1], ",") {
		t.Errorf("kustomization lists %v, want %v", got, names[:len(names)-1])
	}
	if !strings.Contains(strings.Join(names, ","), "deployment-prod-gitlab-agent-v2.yaml") {
		t.Errorf("files %v", names)
	}
	secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s"}}
	if _, err := Files("prod", "d", append(render(t, "v19.6.0"), secret)); err == nil || !strings.Contains(err.Error(), "commits no Secret") {
		t.Errorf("a Secret: %v", err)
	}
}

func TestBlobIDIsGits(t *testing.T) {
	cmd := exec.Command("git", "hash-object", "--stdin")
	cmd.Stdin = strings.NewReader("hello\n")
	got, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if BlobID([]byte("hello\n")) != strings.TrimSpace(string(got)) {
		t.Fatalf("BlobID = %s, git says %s", BlobID([]byte("hello\n")), got)
	}
}

func TestPlan(t *testing.T) {
	dir := "c/gitlab-agent"
	want := []File{{dir + "/a.yaml", []byte("A2")}, {dir + "/b.yaml", []byte("B")}, {dir + "/kustomization.yaml", []byte("resources: [a.yaml, b.yaml]\n")}}
	have := []Existing{
		{dir + "/a.yaml", BlobID([]byte("A1"))},
		{dir + "/b.yaml", BlobID([]byte("B"))},
		{dir + "/old.yaml", BlobID([]byte("O"))},
		{dir + "/mine.yaml", BlobID([]byte("M"))}, // someone else's: not listed before
	}
	prev := []byte(header("prod") + "resources:\n- a.yaml\n- old.yaml\n- ../escape.yaml\n")
	var got []string
	for _, c := range Plan(dir, want, have, prev) {
		got = append(got, c.Action+" "+c.Path)
	}
	if strings.Join(got, "; ") != "update c/gitlab-agent/a.yaml; create c/gitlab-agent/kustomization.yaml; delete c/gitlab-agent/old.yaml" {
		t.Fatalf("plan: %v", got)
	}
	// A kustomization.yaml bootstrap did not write lists nothing of its.
	for _, c := range Plan(dir, want, have, []byte("resources:\n- a.yaml\n- old.yaml\n")) {
		if c.Action == "delete" {
			t.Errorf("someone else's kustomization.yaml made bootstrap delete %s", c.Path)
		}
	}
	same := []Existing{}
	for _, f := range want {
		same = append(same, Existing{f.Path, BlobID(f.Content)})
	}
	if p := Plan(dir, want, same, want[2].Content); len(p) != 0 {
		t.Fatalf("nothing new, yet %v", p)
	}
}
