package gitlab

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// listArchive is the entries of a tar.gz: "name" for files, "name/" for
// directories, "name -> target" for links.
func listArchive(t *testing.T, r io.Reader) []string {
	t.Helper()
	gz, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
		case tar.TypeSymlink:
			out = append(out, h.Name+" -> "+h.Linkname)
		default:
			out = append(out, h.Name)
		}
	}
	sort.Strings(out)
	return out
}

func TestArchive(t *testing.T) {
	f := newFixture(t)
	_, rToken := f.fake.AddMember(f.project, "rita", fakegitlab.Reporter)
	c := f.client(t, rToken)
	f.fake.SetFile(f.project, "main", "clusters/prod/apps/kustomization.yaml", []byte("resources: [a.yaml]\n"))
	f.fake.SetFile(f.project, "main", "clusters/prod/apps/a.yaml", []byte("kind: A\n"))
	f.fake.SetFile(f.project, "main", "base/b.yaml", []byte("kind: B\n"))
	if err := f.fake.SetSymlink(f.project, "main", "clusters/prod/apps/base", "../../../base"); err != nil {
		t.Fatal(err)
	}
	log, err := f.fake.GitLog(f.project.ID, "main")
	if err != nil || len(log) == 0 {
		t.Fatal(log, err)
	}
	sha := log[0].ID
	topDir := "agents-" + sha + "/"

	// The whole repository at a commit.
	rc, err := c.Archive(ctx, proj, sha, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := listArchive(t, rc)
	_ = rc.Close()
	want := []string{topDir, topDir + "base/", topDir + "base/b.yaml", topDir + "clusters/", topDir + "clusters/prod/", topDir + "clusters/prod/apps/",
		topDir + "clusters/prod/apps/a.yaml", topDir + "clusters/prod/apps/base -> ../../../base", topDir + "clusters/prod/apps/kustomization.yaml"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("archive:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A path of it, at a branch: the path keeps its place under the top
	// directory, which names it.
	rc, err = c.Archive(ctx, proj, "main", "./clusters/prod/", 0)
	if err != nil {
		t.Fatal(err)
	}
	got = listArchive(t, rc)
	if len(got) == 0 || !strings.HasSuffix(got[0], "-clusters-prod/") {
		t.Fatalf("path archive: %v", got)
	}
	for _, e := range got[1:] {
		if !strings.HasPrefix(e, got[0]+"clusters/") || strings.Contains(e, "base/b.yaml") {
			t.Errorf("path archive holds %s", e)
		}
	}
	if !strings.Contains(strings.Join(got, " "), "clusters/prod/apps/a.yaml") {
		t.Errorf("path archive: %v", got)
	}

	// What is not there.
	for _, tc := range []struct{ sha, path string }{{strings.Repeat("0", 40), ""}, {"nope", ""}, {"main", "not/there"}} {
		_, err := c.Archive(ctx, proj, tc.sha, tc.path, 0)
		if !IsClass(err, ClassNotFound) || !strings.Contains(err.Error(), "check that "+tc.sha+" exists in infra/agents") {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	if _, err := c.Archive(ctx, ProjectRef{Path: "other/x"}, "main", "", 0); !IsClass(err, ClassNotFound) {
		t.Errorf("another project: %v", err)
	}

	// Larger than allowed: refused, with the bound in the message.
	if _, err := c.Archive(ctx, proj, sha, "", 100); !IsClass(err, ClassBadAnswer) || !strings.Contains(err.Error(), "the archive is larger than 1 KiB") {
		t.Errorf("over the bound: %v", err)
	}
}

// GitLab.com allows 5 archives a minute: its 429 is waited out and the
// archive comes on the next try.
func TestArchiveRateLimited(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.dToken)
	f.fake.SetFile(f.project, "main", "a.yaml", []byte("kind: A\n"))
	f.fake.Inject(fakegitlab.Fault{Route: fakegitlab.ArchiveRoute, Nth: 1, Status: 429, RetryAfter: "1"})
	rc, err := c.Archive(ctx, proj, "main", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := listArchive(t, rc); len(got) != 2 {
		t.Errorf("archive: %v", got)
	}
	if n := f.fake.Calls(fakegitlab.ArchiveRoute); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
	if !strings.Contains(f.log.String(), "429") {
		t.Errorf("no retry line: %q", f.log.String())
	}
}
