package fakegitlab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Each project's repository is a bare git repository under the server's
// temporary directory, at <gitRoot>/<path_with_namespace>.git, driven with
// git's plumbing: a commit is built in a temporary index (read-tree,
// update-index, write-tree, commit-tree) and lands only when update-ref
// moves the branch from the tip it was built on (compare-and-swap), so a
// commit is all or nothing.

// gitRepo is a project's bare repository.
type gitRepo struct {
	dir string
}

const zeroSHA = "0000000000000000000000000000000000000000"

var shaRE = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// gitEnv is the environment of every git command: nothing of the user's or
// the test's git configuration and environment, and pathspecs taken
// literally (a path is never a glob).
func gitEnv(dir string) []string {
	return []string{
		"GIT_DIR=" + dir,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"HOME=" + dir,
		"PATH=" + os.Getenv("PATH"),
		"LC_ALL=C",
		"TZ=UTC",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_LITERAL_PATHSPECS=1",
		"GIT_NO_REPLACE_OBJECTS=1",
	}
}

// gitError is a git command that failed, with what it wrote to stderr.
type gitError struct {
	args   []string
	stderr string
	err    error
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.args, " "), e.err, strings.TrimSpace(e.stderr))
}

func (e *gitError) Unwrap() error { return e.err }

// exitedWith reports a git command that ran and exited with code.
func exitedWith(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// run runs git args in the repository with extra environment env and
// stdin (nil: none), and returns its standard output.
func (g *gitRepo) run(env []string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Env = append(gitEnv(g.dir), env...)
	cmd.Dir = g.dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), &gitError{args: args, stderr: errb.String(), err: err}
	}
	return out.Bytes(), nil
}

// repo is p's repository, made (empty, HEAD on the default branch) when
// first needed. Call with s.mu held.
func (s *Server) repo(p *Project) (*gitRepo, error) {
	if g := s.repos[p.ID]; g != nil {
		return g, nil
	}
	if s.gitRoot == "" {
		dir, err := os.MkdirTemp("", "fakegitlab-")
		if err != nil {
			return nil, err
		}
		s.gitRoot = dir
	}
	dir := filepath.Join(s.gitRoot, filepath.FromSlash(p.PathWithNS)+".git")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &gitRepo{dir: dir}
	branch := p.DefaultBranch
	if !validBranchName(branch) {
		branch = "main"
	}
	if _, err := g.run(nil, nil, "init", "--quiet", "--bare", "--template=", "--initial-branch="+branch); err != nil {
		return nil, err
	}
	s.repos[p.ID] = g
	return g, nil
}

// validBranchName is git's check-ref-format for a branch name, less what
// GitLab allows anyway.
func validBranchName(b string) bool {
	if b == "" || b == "HEAD" || b == "@" || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock") || strings.Contains(b, "..") || strings.Contains(b, "//") ||
		strings.Contains(b, "@{") || len(b) > 255 {
		return false
	}
	for _, r := range b {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	for _, part := range strings.Split(b, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	return true
}

// resolve finds ref, a branch, a tag or a commit SHA (in that order, as
// GitLab looks a ref up), as a commit ID. Revision syntax (main~1, :/x) is
// not a ref: found is false.
func (g *gitRepo) resolve(ref string) (string, bool, error) {
	var cands []string
	if validBranchName(ref) {
		cands = append(cands, "refs/heads/"+ref, "refs/tags/"+ref)
	}
	if shaRE.MatchString(ref) {
		cands = append(cands, ref)
	}
	for _, c := range cands {
		out, err := g.run(nil, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", c+"^{commit}")
		if err == nil {
			return strings.TrimSpace(string(out)), true, nil
		}
		if !exitedWith(err, 1) && !exitedWith(err, 128) {
			return "", false, err
		}
	}
	return "", false, nil
}

// branchTip is branch's commit; found is false when there is no branch.
func (g *gitRepo) branchTip(branch string) (string, bool, error) {
	if !validBranchName(branch) {
		return "", false, nil
	}
	out, err := g.run(nil, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		if exitedWith(err, 1) || exitedWith(err, 128) {
			return "", false, nil
		}
		return "", false, err
	}
	return strings.TrimSpace(string(out)), true, nil
}

// branches lists the branch names, sorted.
func (g *gitRepo) branches() ([]string, error) {
	out, err := g.run(nil, nil, "for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads/")
	if err != nil {
		return nil, err
	}
	var list []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			list = append(list, l)
		}
	}
	sort.Strings(list)
	return list, nil
}

// empty reports a repository without branches, where GitLab lets the first
// commit create any branch.
func (g *gitRepo) empty() (bool, error) {
	list, err := g.branches()
	return len(list) == 0, err
}

// treeEntry is one line of ls-tree.
type treeEntry struct {
	Mode, Type, ID, Path string
}

// lsTree lists commit's tree recursively, subtrees included, as git
// orders it.
func (g *gitRepo) lsTree(commit string) ([]treeEntry, error) {
	out, err := g.run(nil, nil, "ls-tree", "-r", "-t", "-z", "--full-tree", commit)
	if err != nil {
		return nil, err
	}
	var list []treeEntry
	for _, rec := range strings.Split(string(out), "\x00") {
		meta, path, ok := strings.Cut(rec, "\t")
		if !ok {
			continue
		}
		f := strings.Fields(meta)
		if len(f) != 3 {
			return nil, fmt.Errorf("ls-tree: unexpected line %q", rec)
		}
		list = append(list, treeEntry{Mode: f[0], Type: f[1], ID: f[2], Path: path})
	}
	return list, nil
}

// files maps commit's file paths (blobs, links and submodules) to their
// entries; an empty commit ("") has none.
func (g *gitRepo) files(commit string) (map[string]treeEntry, error) {
	m := map[string]treeEntry{}
	if commit == "" {
		return m, nil
	}
	list, err := g.lsTree(commit)
	if err != nil {
		return nil, err
	}
	for _, e := range list {
		if e.Type != "tree" {
			m[e.Path] = e
		}
	}
	return m, nil
}

// catBlobs reads the blobs ids in one git process.
func (g *gitRepo) catBlobs(ids []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(ids) == 0 {
		return out, nil
	}
	var in bytes.Buffer
	for _, id := range ids {
		in.WriteString(id + "\n")
	}
	raw, err := g.run(nil, in.Bytes(), "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	for range ids {
		head, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("cat-file: %w", err)
		}
		f := strings.Fields(head)
		if len(f) != 3 {
			return nil, fmt.Errorf("cat-file: %q", head)
		}
		n, _ := strconv.Atoi(f[2])
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("cat-file: %w", err)
		}
		_, _ = r.ReadByte() // the newline after the content
		out[f[0]] = b
	}
	return out, nil
}

// readFile is path's content at commit.
func (g *gitRepo) readFile(commit, path string) ([]byte, treeEntry, bool, error) {
	out, err := g.run(nil, nil, "ls-tree", "-z", "--full-tree", commit, "--", path)
	if err != nil {
		return nil, treeEntry{}, false, err
	}
	meta, got, ok := strings.Cut(strings.TrimSuffix(string(out), "\x00"), "\t")
	f := strings.Fields(meta)
	if !ok || got != path || len(f) != 3 || f[1] != "blob" {
		return nil, treeEntry{}, false, nil
	}
	e := treeEntry{Mode: f[0], Type: f[1], ID: f[2], Path: path}
	blobs, err := g.catBlobs([]string{e.ID})
	if err != nil {
		return nil, treeEntry{}, false, err
	}
	return blobs[e.ID], e, true, nil
}

// lastCommit is the last commit at or before commit that changed path; ""
// when none did.
func (g *gitRepo) lastCommit(commit, path string) (string, error) {
	out, err := g.run(nil, nil, "log", "-1", "--format=%H", commit, "--", path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// gitCommit is a commit as git log gives it.
type gitCommit struct {
	ID                            string
	Parents                       []string
	AuthorName, AuthorEmail       string
	AuthoredAt                    time.Time
	CommitterName, CommitterEmail string
	CommittedAt                   time.Time
	Message                       string
}

const logFormat = "--format=%H%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B"

// log runs git log with args (revisions, limits, paths) and parses its
// commits.
func (g *gitRepo) log(args ...string) ([]gitCommit, error) {
	out, err := g.run(nil, nil, append([]string{"log", "-z", logFormat}, args...)...)
	if err != nil {
		return nil, err
	}
	fields := strings.Split(string(out), "\x00")
	var list []gitCommit
	for len(fields) >= 9 {
		f := fields[:9]
		fields = fields[9:]
		at, _ := strconv.ParseInt(f[4], 10, 64)
		ct, _ := strconv.ParseInt(f[7], 10, 64)
		c := gitCommit{ID: f[0], Parents: strings.Fields(f[1]), AuthorName: f[2], AuthorEmail: f[3], AuthoredAt: time.Unix(at, 0).UTC(),
			CommitterName: f[5], CommitterEmail: f[6], CommittedAt: time.Unix(ct, 0).UTC(), Message: f[8]}
		if c.Parents == nil {
			c.Parents = []string{}
		}
		list = append(list, c)
	}
	return list, nil
}

// commitInfo reads one commit.
func (g *gitRepo) commitInfo(id string) (gitCommit, error) {
	list, err := g.log("-1", "--end-of-options", id)
	if err != nil || len(list) != 1 {
		return gitCommit{}, fmt.Errorf("reading commit %s: %v", id, err)
	}
	return list[0], nil
}

// stats counts the lines commit added and deleted against its first parent.
func (g *gitRepo) stats(c gitCommit) (add, del int) {
	args := []string{"diff-tree", "-r", "--numstat", "--root", "--no-commit-id"}
	if len(c.Parents) > 0 {
		args = append(args, c.Parents[0])
	}
	out, err := g.run(nil, nil, append(args, c.ID)...)
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			a, _ := strconv.Atoi(f[0])
			d, _ := strconv.Atoi(f[1])
			add, del = add+a, del+d
		}
	}
	return add, del
}

// ident is who wrote or committed a commit.
type ident struct{ Name, Email string }

// fileAction is one change of a commit, checked and with its content
// decoded.
type fileAction struct {
	Action       string // create, update, delete, move, chmod
	Path         string
	PreviousPath string
	Content      []byte
	HasContent   bool
	LastCommitID string
	Executable   bool // for chmod
	// Symlink makes a create a symbolic link to Content (fixtures only:
	// the API has no such action).
	Symlink bool
}

// indexError is a change GitLab refuses (400), with its message.
type indexError string

func (e indexError) Error() string { return string(e) }

// checkPath is Gitaly's check of a commit's file path: "" when it is fine,
// else GitLab's message. A path that leaves the repository, names .git, is
// absolute or has empty or control-character parts is refused.
func checkPath(path string) string {
	if path == "" {
		return "You must provide a file path"
	}
	for _, seg := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return "Path cannot include directory traversal"
		}
	}
	invalid := fmt.Sprintf("invalid path: '%s'", path)
	if strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || len(path) > 4096 {
		return invalid
	}
	for _, r := range path {
		if r < 0x20 || r == 0x7f {
			return invalid
		}
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || strings.EqualFold(seg, ".git") {
			return invalid
		}
	}
	return ""
}

// commitFiles applies acts to the tree of parent ("" for a first commit),
// commits the result with message and moves branch to it, from oldTip
// ("": the branch must not exist yet). A refused change is an indexError
// and changes nothing; so does a branch that moved meanwhile.
func (g *gitRepo) commitFiles(parent, oldTip, branch string, acts []fileAction, message string, author, committer ident, when time.Time) (string, error) {
	files, err := g.files(parent)
	if err != nil {
		return "", err
	}
	// GitLab checks every last_commit_id first, against the start point.
	for _, a := range acts {
		if a.LastCommitID == "" || (a.Action != "update" && a.Action != "move" && a.Action != "delete" && a.Action != "chmod") {
			continue
		}
		path := a.Path
		if a.Action == "move" {
			path = a.PreviousPath
		}
		if parent == "" {
			continue
		}
		last, err := g.lastCommit(parent, path)
		if err != nil {
			return "", err
		}
		if last != "" && last != a.LastCommitID {
			return "", indexError("The file has changed since you started editing it: " + path)
		}
	}
	isDir := func(p string) bool {
		for f := range files {
			if strings.HasPrefix(f, p+"/") {
				return true
			}
		}
		return false
	}
	underFile := func(p string) bool {
		for i := strings.Index(p, "/"); i >= 0; i = next(p, i) {
			if _, ok := files[p[:i]]; ok {
				return true
			}
		}
		return false
	}
	type change struct {
		mode, id string
		content  []byte
	}
	changed := map[string]*change{} // nil: removed
	put := func(path string, c *change) {
		changed[path] = c
		if c == nil {
			delete(files, path)
		} else {
			files[path] = treeEntry{Mode: c.mode, Type: "blob", ID: c.id, Path: path}
		}
	}
	for _, a := range acts {
		if msg := checkPath(a.Path); msg != "" {
			return "", indexError(msg)
		}
		if a.Action == "move" {
			if msg := checkPath(a.PreviousPath); msg != "" {
				return "", indexError(msg)
			}
		}
		cur, exists := files[a.Path]
		switch a.Action {
		case "create":
			switch {
			case exists:
				return "", indexError("A file with this name already exists")
			case isDir(a.Path):
				return "", indexError("A directory with this name already exists")
			case underFile(a.Path):
				return "", indexError("A file with this name already exists")
			}
			mode := "100644"
			if a.Symlink {
				mode = "120000"
			}
			put(a.Path, &change{mode: mode, content: a.Content})
		case "update":
			if !exists {
				return "", indexError("A file with this name doesn't exist")
			}
			put(a.Path, &change{mode: cur.Mode, content: a.Content})
		case "delete":
			if !exists {
				return "", indexError("A file with this name doesn't exist")
			}
			put(a.Path, nil)
		case "chmod":
			if !exists {
				return "", indexError("A file with this name doesn't exist")
			}
			mode := "100644"
			if a.Executable {
				mode = "100755"
			}
			c := &change{mode: mode, id: cur.ID}
			if prev := changed[a.Path]; prev != nil {
				c.id, c.content = prev.id, prev.content
			}
			put(a.Path, c)
		case "move":
			prev, ok := files[a.PreviousPath]
			if !ok {
				return "", indexError("A file with this name doesn't exist")
			}
			if a.Path != a.PreviousPath {
				switch {
				case exists:
					return "", indexError("A file with this name already exists")
				case isDir(a.Path):
					return "", indexError("A directory with this name already exists")
				}
			}
			c := &change{mode: prev.Mode, id: prev.ID}
			if p := changed[a.PreviousPath]; p != nil {
				c.id, c.content = p.id, p.content
			}
			if a.HasContent {
				c.id, c.content = "", a.Content
			}
			put(a.PreviousPath, nil)
			put(a.Path, c)
			if underFile(a.Path) {
				return "", indexError("A file with this name already exists")
			}
		default:
			return "", indexError("action does not have a valid value")
		}
	}
	// Everything is checked: write the blobs, then the tree, the commit and
	// the branch.
	for _, c := range changed {
		if c != nil && c.id == "" {
			out, err := g.run(nil, c.content, "hash-object", "-w", "--stdin")
			if err != nil {
				return "", err
			}
			c.id = strings.TrimSpace(string(out))
		}
	}
	index := filepath.Join(g.dir, "fake-index-"+randomString(12))
	defer os.Remove(index)
	env := []string{"GIT_INDEX_FILE=" + index}
	if parent != "" {
		_, err = g.run(env, nil, "read-tree", parent)
	} else {
		_, err = g.run(env, nil, "read-tree", "--empty")
	}
	if err != nil {
		return "", err
	}
	paths := make([]string, 0, len(changed))
	for p := range changed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var info bytes.Buffer
	for _, p := range paths { // removals first: a file may become a directory
		if changed[p] == nil {
			fmt.Fprintf(&info, "0 %s\t%s\x00", zeroSHA, p)
		}
	}
	for _, p := range paths {
		if c := changed[p]; c != nil {
			fmt.Fprintf(&info, "%s %s\t%s\x00", c.mode, c.id, p)
		}
	}
	if _, err := g.run(env, info.Bytes(), "update-index", "-z", "--add", "--remove", "--index-info"); err != nil {
		return "", indexError("Unknown error performing git operation")
	}
	tree, err := g.run(env, nil, "write-tree")
	if err != nil {
		return "", err
	}
	date := fmt.Sprintf("@%d +0000", when.Unix())
	cenv := []string{
		"GIT_AUTHOR_NAME=" + author.Name, "GIT_AUTHOR_EMAIL=" + author.Email, "GIT_AUTHOR_DATE=" + date,
		"GIT_COMMITTER_NAME=" + committer.Name, "GIT_COMMITTER_EMAIL=" + committer.Email, "GIT_COMMITTER_DATE=" + date,
	}
	args := []string{"commit-tree", strings.TrimSpace(string(tree))}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	out, err := g.run(cenv, []byte(message), append(args, "-F", "-")...)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(out))
	old := oldTip
	if old == "" {
		old = zeroSHA
	}
	if _, err := g.run(nil, nil, "update-ref", "-m", "fakegitlab commit", "refs/heads/"+branch, id, old); err != nil {
		return "", indexError(fmt.Sprintf("Could not update refs/heads/%s. Please refresh and try again.", branch))
	}
	return id, nil
}

// next is the index of the next "/" in p after i, or -1.
func next(p string, i int) int {
	j := strings.Index(p[i+1:], "/")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// createBranch makes branch point at commit; false when it exists.
func (g *gitRepo) createBranch(branch, commit string) (bool, error) {
	if _, err := g.run(nil, nil, "update-ref", "-m", "fakegitlab branch", "refs/heads/"+branch, commit, zeroSHA); err != nil {
		if _, exists, _ := g.branchTip(branch); exists {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// setFile commits content at path on branch as a fixture (see SetFile).
func (s *Server) setFile(p *Project, branch, path string, content []byte) error {
	return s.setFileAs(p, branch, path, content, false)
}

func (s *Server) setFileAs(p *Project, branch, path string, content []byte, symlink bool) error {
	g, err := s.repo(p)
	if err != nil {
		return err
	}
	fixture := ident{Name: "Fixture", Email: "fixture@fakegitlab.invalid"}
	tip, ok, err := g.branchTip(branch)
	if err != nil {
		return err
	}
	if !ok {
		base, baseOK, err := g.branchTip(p.DefaultBranch)
		if err != nil {
			return err
		}
		if !baseOK && branch != p.DefaultBranch {
			// As before the repository was real: the default branch
			// exists, empty.
			if base, err = g.commitFiles("", "", p.DefaultBranch, nil, "Initial commit", fixture, fixture, s.now()); err != nil {
				return err
			}
		}
		if base != "" {
			if _, err := g.createBranch(branch, base); err != nil {
				return err
			}
		}
		tip = base
	}
	action := fileAction{Action: "create", Path: path, Content: content, HasContent: true, Symlink: symlink}
	if tip != "" {
		if _, _, exists, err := g.readFile(tip, path); err != nil {
			return err
		} else if exists {
			action.Action = "update"
		}
	}
	_, err = g.commitFiles(tip, tip, branch, []fileAction{action}, "Set "+path, fixture, fixture, s.now())
	return err
}

// fileAt is path's content on ref (a branch, tag or SHA) of p.
func (s *Server) fileAt(p *Project, ref, path string) ([]byte, bool) {
	g, err := s.repo(p)
	if err != nil {
		return nil, false
	}
	commit, ok, err := g.resolve(ref)
	if err != nil || !ok {
		return nil, false
	}
	b, _, ok, err := g.readFile(commit, path)
	if err != nil || !ok {
		return nil, false
	}
	return b, true
}
