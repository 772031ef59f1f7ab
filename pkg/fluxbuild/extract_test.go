package fluxbuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// entry is one tar entry of a test archive.
type entry struct {
	name string
	typ  byte
	body string
	link string
	size int64 // declared size when not len(body)
}

func file(name, body string) entry        { return entry{name: name, typ: tar.TypeReg, body: body} }
func dirEntry(name string) entry          { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) entry   { return entry{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) entry  { return entry{name: name, typ: tar.TypeLink, link: target} }
func special(name string, typ byte) entry { return entry{name: name, typ: typ} }

// archive makes a tar.gz of entries, as git archive would lay them out
// when they start with its top directory.
func archive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	// git archive's pax global header, with the commit ID.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": strings.Repeat("a", 40)}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// privateTemp points os.TempDir at a new directory, so that a test sees
// everything Extract leaves there.
func privateTemp(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	return tmp
}

func entriesIn(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

const top = "infra-3f5a-3f5a9c/"

func TestExtract(t *testing.T) {
	tmp := privateTemp(t)
	data := archive(t,
		dirEntry(top),
		dirEntry(top+"apps/"),
		file(top+"apps/a.yaml", "kind: A\n"),
		file(top+"apps/prod/b.yaml", "kind: B\n"), // no directory entry before it
		symlink(top+"apps/base", "prod"),          // inside: left out, as source-controller does
		file(top+"README.md", "hello"),
		dirEntry(top+"empty/"),
	)
	dir, cleanup, err := Extract(context.Background(), bytes.NewReader(data), "tar.gz", "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != tmp {
		t.Errorf("extracted to %s, not under %s", dir, tmp)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory: %v %v", fi.Mode(), err)
	}
	got := snapshot(t, dir)
	want := map[string]string{"apps/a.yaml": "kind: A\n", "apps/prod/b.yaml": "kind: B\n", "README.md": "hello"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("extracted %v, want %v", got, want)
	}
	if _, err := os.Lstat(filepath.Join(dir, "apps/base")); !os.IsNotExist(err) {
		t.Errorf("the link was written: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "apps/a.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a file: %v %v", fi.Mode(), err)
	}
	cleanup()
	cleanup() // twice is fine
	if left := entriesIn(t, tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}

	// Only the app's path.
	dir, cleanup, err = Extract(context.Background(), bytes.NewReader(data), "tar.gz", "./apps/prod/", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if got := snapshot(t, dir); !reflect.DeepEqual(got, map[string]string{"apps/prod/b.yaml": "kind: B\n"}) {
		t.Errorf("the subpath: %v", got)
	}
}

// The attacks: each archive is refused with an error that says why, and
// nothing is left behind, in the temporary directory or anywhere else.
func TestExtractRefusesHostileArchives(t *testing.T) {
	outside := t.TempDir() // where the attacks aim
	target := filepath.Join(outside, "pwned")
	big := strings.Repeat("0", 2<<20)
	cases := []struct {
		name    string
		entries []entry
		subpath string
		limits  Limits
		want    string
	}{
		{"a ../ entry", []entry{dirEntry(top), file(top+"../../../../../../.."+target, "x")}, "", Limits{}, "has .. in its name"},
		{"a ../ entry inside the tree", []entry{dirEntry(top), file(top+"apps/../../pwned", "x")}, "", Limits{}, "has .. in its name"},
		{"a ../ top directory", []entry{file("../pwned", "x")}, "", Limits{}, "has .. in its name"},
		{"an absolute entry", []entry{dirEntry(top), file(target, "x")}, "", Limits{}, "has an absolute name"},
		{"an entry outside the top directory", []entry{dirEntry(top), file("other/pwned", "x")}, "", Limits{}, "is outside the archive's top directory"},
		{"a file as the top", []entry{file("pwned", "x")}, "", Limits{}, "is not a directory"},
		{"a symlink to /etc", []entry{dirEntry(top), symlink(top+"apps/etc", "/etc"), file(top+"apps/a.yaml", "x")}, "", Limits{},
			`entry "infra-3f5a-3f5a9c/apps/etc" is a symbolic link to "/etc" (an absolute path)`},
		{"a symlink and a file written through it", []entry{dirEntry(top), symlink(top+"apps/out", outside), file(top+"apps/out/pwned", "x")}, "", Limits{},
			"is a symbolic link"},
		{"a symlink up and out", []entry{dirEntry(top), symlink(top+"apps/up", "../../..")}, "", Limits{}, "outside the repository"},
		{"a symlink chain: each step inside, the whole outside", []entry{dirEntry(top), symlink(top+"a", "."), symlink(top+"e", "a/..")}, "", Limits{},
			`entry "infra-3f5a-3f5a9c/e" is a symbolic link to "a/.." outside the repository`},
		{"a symlink chain through an absolute link", []entry{dirEntry(top), symlink(top+"apps/x", "y/z"), symlink(top+"apps/y", "/tmp")}, "", Limits{},
			`through "apps/y", a link to an absolute path`},
		{"a symlink that leaves the app's path", []entry{dirEntry(top), symlink(top+"apps/prod/sec", "../../secrets"), file(top+"secrets/s", "x")}, "apps/prod", Limits{},
			`outside "apps/prod"`},
		{"a loop of links", []entry{dirEntry(top), symlink(top+"a", "b/x"), symlink(top+"b", "a/x")}, "", Limits{}, "a loop of links"},
		{"a hard link out of the tree", []entry{dirEntry(top), hardlink(top+"passwd", "/etc/passwd")}, "", Limits{}, "is a hard link"},
		{"a hard link inside the tree", []entry{dirEntry(top), file(top+"a", "x"), hardlink(top+"b", top+"a")}, "", Limits{}, "is a hard link"},
		{"a FIFO", []entry{dirEntry(top), special(top+"fifo", tar.TypeFifo)}, "", Limits{}, "is a FIFO"},
		{"a character device", []entry{dirEntry(top), special(top+"null", tar.TypeChar)}, "", Limits{}, "is a device"},
		{"a block device", []entry{dirEntry(top), special(top+"sda", tar.TypeBlock)}, "", Limits{}, "is a device"},
		{"an entry twice", []entry{dirEntry(top), file(top+"a", "1"), file(top+"a", "2")}, "", Limits{}, "appears twice"},
		{"a gzip bomb: one file over the per-file limit", []entry{dirEntry(top), file(top+"zeros", big)}, "", Limits{MaxFileBytes: 1 << 20},
			"a file larger than 1 MiB (infra-3f5a-3f5a9c/zeros), over the limit Limits.MaxFileBytes: a tar bomb"},
		{"a gzip bomb: many files over the total", []entry{dirEntry(top), file(top+"a", big), file(top+"b", big), file(top+"c", big)}, "", Limits{MaxBytes: 5 << 20},
			"more than 5 MiB of files, over the limit Limits.MaxBytes"},
		{"a gzip bomb: files left out count too", []entry{dirEntry(top), file(top+"other/a", big), file(top+"other/b", big), file(top+"apps/c", "x")}, "apps", Limits{MaxBytes: 3 << 20},
			"over the limit Limits.MaxBytes"},
		{"too many entries", manyFiles(50), "", Limits{MaxEntries: 20}, "more than 20 entries, over the limit Limits.MaxEntries"},
		{"an unknown entry type", []entry{dirEntry(top), special(top+"x", 'Z')}, "", Limits{}, `has type "Z"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := privateTemp(t)
			dir, cleanup, err := Extract(context.Background(), bytes.NewReader(archive(t, tc.entries...)), "tar.gz", tc.subpath, tc.limits)
			if err == nil {
				cleanup()
				t.Fatalf("extracted to %s", dir)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if dir != "" || cleanup != nil {
				t.Errorf("a directory and a cleanup with an error: %q", dir)
			}
			if left := entriesIn(t, tmp); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if left := entriesIn(t, outside); len(left) != 0 {
				t.Errorf("written outside: %v", left)
			}
		})
	}
}

func manyFiles(n int) []entry {
	es := []entry{dirEntry(top)}
	for i := range n {
		es = append(es, file(top+"f"+strings.Repeat("x", i), ""))
	}
	return es
}

// An entry whose header claims 10 GiB is refused from its header: not a
// byte of it is read.
func TestExtractRefusesAHugeEntryFromItsHeader(t *testing.T) {
	privateTemp(t)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: top, Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: top + "huge", Typeflag: tar.TypeReg, Size: 10 << 30, Mode: 0o644})
	_, _ = tw.Write(make([]byte, 4096))
	_ = tw.Flush() // fails: the entry is short; the archive ends here
	_ = gz.Close()
	_, _, err := Extract(context.Background(), &buf, "tar.gz", "", Limits{})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "MaxFileBytes" {
		t.Errorf("got %v", err)
	}
}

// PAX headers of 1 MiB each would inflate without bound: the decompressed
// stream is bounded as a whole.
func TestExtractBoundsTheStreamHeadersIncluded(t *testing.T) {
	privateTemp(t)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for i := range 40 {
		h := &tar.Header{Name: top + "f" + strings.Repeat("x", i), Typeflag: tar.TypeReg, Mode: 0o644,
			PAXRecords: map[string]string{"comment": strings.Repeat("p", 900<<10)}, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	_ = tw.Close()
	_ = gz.Close()
	_, _, err := Extract(context.Background(), &buf, "tar.gz", "", Limits{MaxBytes: 1 << 20, MaxEntries: 100})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "MaxBytes" {
		t.Errorf("got %v", err)
	}
}

// Ctrl-C stops the extraction, and the directory goes.
func TestExtractStopsWhenCancelled(t *testing.T) {
	tmp := privateTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	data := archive(t, append(manyFiles(100), file(top+"last", strings.Repeat("y", 1<<20)))...)
	r := &cancelAfter{r: bytes.NewReader(data), n: len(data) / 2, cancel: cancel}
	_, _, err := Extract(ctx, r, "tar.gz", "", Limits{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
	if left := entriesIn(t, tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	if len(p) > 512 {
		p = p[:512]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestExtractRefusesWhatIsNotAnArchive(t *testing.T) {
	tmp := privateTemp(t)
	for _, tc := range []struct{ format, data, want string }{
		{"zip", "PK", `archive format "zip" is not supported`},
		{"tar.gz", "<html>sign in</html>", "reading the repository archive: gzip: invalid header"},
		{"tar.gz", string(archive(t, dirEntry(top), file(top+"a", "x")))[:60], "reading the repository archive"},
	} {
		if _, _, err := Extract(context.Background(), strings.NewReader(tc.data), tc.format, "", Limits{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v, want %q", tc.format, tc.data, err, tc.want)
		}
	}
	if _, _, err := Extract(context.Background(), strings.NewReader(""), "tar.gz", "../x", Limits{}); err == nil || !strings.Contains(err.Error(), "leaves the repository") {
		t.Errorf("subpath ..: %v", err)
	}
	if left := entriesIn(t, tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// A real archive of git's, laid out as GitLab's (the top directory is
// <project>-<ref>-<sha>), symbolic links and all: Extract, ApplySourceIgnore
// and Build together, as apps diff will call them.
func TestExtractGitArchiveThenBuild(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	privateTemp(t)
	repo := tree(t, map[string]string{
		"clusters/prod/apps/kustomization.yaml": "resources: [../../../base, cm.yaml]\nnamePrefix: prod-\n",
		"clusters/prod/apps/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: prod}\n",
		"base/kustomization.yaml":               "resources: [deploy.yaml]\n",
		"base/deploy.yaml":                      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n",
		"base/.gitlab-ci.yml":                   "stages: [x]\n",
		".gitlab-ci.yml":                        "stages: [test]\n",
		"README.md":                             "# fleet\n",
	})
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	if err := os.Symlink("../clusters", filepath.Join(repo, "base", "clusters-link")); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "fleet")
	cmd := exec.Command("git", "archive", "--format=tar.gz", "--prefix=fleet-main-0123abcd/", "HEAD")
	cmd.Dir = repo
	data, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	dir, cleanup, err := Extract(context.Background(), bytes.NewReader(data), "tar.gz", "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if err := ApplySourceIgnore(dir, nil); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dir)
	if _, ok := got["base/.gitlab-ci.yml"]; ok || len(got) != 5 {
		t.Errorf("after the ignore rules: %v", got)
	}
	res, err := Build(context.Background(), dir, kustomization(t, "path: ./clusters/prod/apps"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range res.Objects {
		names = append(names, o.GetName())
	}
	if strings.Join(names, ",") != "prod-base,prod-prod" {
		t.Errorf("built %v", names)
	}
}
