package fluxbuild

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// Limits bound what Extract reads and writes; a zero field takes its
// default.
type Limits struct {
	// MaxBytes bounds the bytes of all files in the archive, those written
	// and those left out alike (default 128 MiB).
	MaxBytes int64
	// MaxFileBytes bounds one file (default 16 MiB: a large bundle of CRDs
	// is a few MiB).
	MaxFileBytes int64
	// MaxEntries bounds the archive's entries of any kind (default 20,000).
	MaxEntries int
}

// The defaults of Limits. A GitOps repository is YAML: tens of MiB at most.
const (
	DefaultMaxBytes     = 128 << 20
	DefaultMaxFileBytes = 16 << 20
	DefaultMaxEntries   = 20_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// headerAllowance is what the decompressed stream may hold per entry
// besides file content: the 512-byte header, padding, and PAX or GNU
// long-name records. Without it, a stream of huge PAX headers (archive/tar
// allows 1 MiB each) would inflate without limit.
const headerAllowance = 8 << 10

// LimitError is an archive over one of Limits: a tar bomb, or a repository
// too large to build here.
type LimitError struct {
	// Limit names the field of Limits, e.g. "MaxEntries".
	Limit string
	Max   int64
	// Entry is the entry that crossed the limit, when one did.
	Entry string
}

func (e *LimitError) Error() string {
	var what string
	switch e.Limit {
	case "MaxEntries":
		what = fmt.Sprintf("more than %d entries", e.Max)
	case "MaxFileBytes":
		what = fmt.Sprintf("a file larger than %s (%s)", bytesText(e.Max), e.Entry)
	default:
		what = fmt.Sprintf("more than %s of files", bytesText(e.Max))
	}
	return fmt.Sprintf("the repository archive holds %s, over the limit Limits.%s: a tar bomb, or a repository too large to build", what, e.Limit)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// EntryError is an archive entry Extract refuses to write.
type EntryError struct {
	Entry  string // as the archive names it, made safe to print
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("refusing the repository archive: entry %q %s", e.Entry, e.Reason)
}

// Extract unpacks a repository archive of GitLab's (format "tar.gz", "tgz" or
// "tar") into a new private directory and returns it, with a cleanup that
// removes it. The archive's top directory (<project>-<ref>-<sha>/) is
// stripped, so that dir is the repository's root; with subpath, only that
// directory of the repository is written.
//
// The archive is hostile input. Entries with .. or absolute names, hard
// links, devices and FIFOs are refused, and so are symbolic links whose
// target, followed through the archive's other links, leaves the extracted
// tree (subpath, when given). No link is written: source-controller leaves
// links out of a GitRepository's artifact, so Flux builds without them too
// (fluxcd/pkg artifact/storage/archive.go, Storage.Archive). Sizes and
// counts are bounded by limits. Nothing is written outside dir, which is
// made 0700 and removed on error; ctx stops the work.
func Extract(ctx context.Context, r io.Reader, format, subpath string, limits Limits) (dir string, cleanup func(), err error) {
	limits = limits.withDefaults()
	sub, err := cleanRel(subpath)
	if err != nil {
		return "", nil, fmt.Errorf("the path %q in the repository: %w", safetext.Line(subpath), err)
	}
	in := &ctxReader{ctx: ctx, r: r}
	var stream io.Reader
	switch format {
	case "tar.gz", "tgz":
		gz, err := gzip.NewReader(in)
		if err != nil {
			return "", nil, fmt.Errorf("reading the repository archive: %w", err)
		}
		defer gz.Close()
		stream = gz
	case "tar":
		stream = in
	default:
		return "", nil, fmt.Errorf("archive format %q is not supported: ask GitLab for tar.gz", safetext.Line(format))
	}
	// The decompressed stream is bounded as a whole, headers included.
	maxStream := limits.MaxBytes + int64(limits.MaxEntries)*headerAllowance
	stream = &boundedReader{r: stream, left: maxStream, err: &LimitError{Limit: "MaxBytes", Max: limits.MaxBytes}}

	tmp, err := os.MkdirTemp("", "kubectl-gitlab-agent-source-*") // 0700
	if err != nil {
		return "", nil, fmt.Errorf("making a temporary directory for the repository: %w", err)
	}
	var once sync.Once
	remove := func() { once.Do(func() { _ = os.RemoveAll(tmp) }) }
	if err := extractInto(ctx, tmp, stream, sub, limits); err != nil {
		remove()
		return "", nil, err
	}
	return tmp, remove, nil
}

func extractInto(ctx context.Context, dir string, stream io.Reader, sub string, limits Limits) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{root: root, dir: dir, sub: sub, limits: limits, tr: tar.NewReader(stream), links: map[string]string{}, written: map[string]bool{}, dirs: map[string]bool{".": true}}
	return x.run(ctx)
}

// extractor is one run of Extract.
type extractor struct {
	root *os.Root
	// dir is root's path: files are written at dir/rel with plain opens
	// (one system call each, where os.Root takes one per path
	// component): every rel is clean and inside (strip), no link is ever
	// written, and dir is a new 0700 directory only this process writes,
	// so no path in it can lead out.
	dir  string
	dirs map[string]bool // the directories made
	// writes are the files read, written by writers (file creation is
	// most of an extraction's time: a system call each, done in parallel).
	writes   chan fileWrite
	wg       sync.WaitGroup
	errMu    sync.Mutex
	writeErr error
	sub      string
	limits   Limits
	tr       *tar.Reader

	top     string // the archive's top directory, stripped
	entries int
	bytes   int64
	links   map[string]string // the archive's symbolic links: name → target
	written map[string]bool   // the files written
}

// fileWrite is a file to write: where and what.
type fileWrite struct {
	rel, shown string
	data       []byte
}

// writers is how many goroutines create files.
const writers = 4

func (x *extractor) run(ctx context.Context) error {
	x.writes = make(chan fileWrite, writers)
	for range writers {
		x.wg.Go(func() {
			for w := range x.writes {
				if err := x.create(w); err != nil {
					x.errMu.Lock()
					if x.writeErr == nil {
						x.writeErr = err
					}
					x.errMu.Unlock()
				}
			}
		})
	}
	err := x.read(ctx)
	close(x.writes)
	x.wg.Wait()
	if err != nil {
		return err
	}
	if x.writeErr != nil {
		return x.writeErr
	}
	return x.checkLinks()
}

func (x *extractor) read(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := x.tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return fmt.Errorf("reading the repository archive: %w", err)
		}
		if err := x.entry(h); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) entry(h *tar.Header) error {
	x.entries++
	if x.entries > x.limits.MaxEntries {
		return &LimitError{Limit: "MaxEntries", Max: int64(x.limits.MaxEntries)}
	}
	shown := safetext.Line(safetext.Clip(h.Name, 200))
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil // git archive's pax_global_header, holding the commit ID
	}
	rel, err := x.strip(h.Name)
	if err != nil {
		return &EntryError{Entry: shown, Reason: err.Error()}
	}
	// File content counts whether it is written or left out: it is
	// decompressed either way.
	if h.Typeflag == tar.TypeReg {
		if h.Size > x.limits.MaxFileBytes {
			return &LimitError{Limit: "MaxFileBytes", Max: x.limits.MaxFileBytes, Entry: shown}
		}
		x.bytes += h.Size
		if x.bytes > x.limits.MaxBytes {
			return &LimitError{Limit: "MaxBytes", Max: x.limits.MaxBytes}
		}
	}
	switch h.Typeflag {
	case tar.TypeLink:
		// git has no hard links: git archive never writes one.
		return &EntryError{Entry: shown, Reason: "is a hard link (to " + strconvQuote(h.Linkname) + "): a repository archive holds none"}
	case tar.TypeChar, tar.TypeBlock:
		return &EntryError{Entry: shown, Reason: "is a device: a repository archive holds files, directories and links only"}
	case tar.TypeFifo:
		return &EntryError{Entry: shown, Reason: "is a FIFO: a repository archive holds files, directories and links only"}
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
	default:
		return &EntryError{Entry: shown, Reason: fmt.Sprintf("has type %q: a repository archive holds files, directories and links only", string(h.Typeflag))}
	}
	if rel == "" {
		if h.Typeflag != tar.TypeDir {
			return &EntryError{Entry: shown, Reason: "is not a directory: a repository archive has one top directory"}
		}
		return nil
	}
	if h.Typeflag == tar.TypeSymlink {
		// Every link is kept to resolve the others through it; only
		// those in the extracted part are checked.
		if _, dup := x.links[rel]; dup || x.written[rel] {
			return &EntryError{Entry: shown, Reason: "appears twice"}
		}
		x.links[rel] = h.Linkname
		return nil
	}
	if !x.wanted(rel) {
		return nil
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := x.mkdirAll(rel); err != nil {
			return &EntryError{Entry: shown, Reason: "cannot be made a directory: " + lastPart(err)}
		}
	case tar.TypeReg:
		if _, dup := x.links[rel]; dup {
			return &EntryError{Entry: shown, Reason: "appears twice"}
		}
		x.written[rel] = true
		if err := x.writeFile(rel, h.Size); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			var le *LimitError
			if errors.As(err, &le) {
				return err
			}
			return &EntryError{Entry: shown, Reason: "cannot be written: " + lastPart(err)}
		}
	}
	return nil
}

// strip checks an entry's name and returns it without the top directory.
func (x *extractor) strip(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", errors.New("has a NUL in its name")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("has an absolute name")
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == ".." {
			return "", errors.New("has .. in its name")
		}
	}
	var kept []string
	for _, p := range parts {
		if p != "" && p != "." {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return "", errors.New("has an empty name")
	}
	if x.top == "" {
		x.top = kept[0]
	} else if kept[0] != x.top {
		return "", fmt.Errorf("is outside the archive's top directory %q", safetext.Line(x.top))
	}
	return strings.Join(kept[1:], "/"), nil
}

// wanted reports whether rel is in the part of the repository to extract.
func (x *extractor) wanted(rel string) bool {
	return x.sub == "" || rel == x.sub || strings.HasPrefix(rel, x.sub+"/")
}

func (x *extractor) writeFile(rel string, size int64) error {
	if err := x.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	// Read whole (size is bounded by MaxFileBytes) to refuse a YAML alias
	// bomb before it is written: kustomize would read any file.
	data := make([]byte, size)
	if _, err := io.ReadFull(x.tr, data); err != nil {
		return err
	}
	if err := checkAliases(data); err != nil {
		return err
	}
	x.errMu.Lock()
	failed := x.writeErr
	x.errMu.Unlock()
	if failed != nil {
		return failed
	}
	x.writes <- fileWrite{rel: rel, shown: safetext.Line(safetext.Clip(x.top+"/"+rel, 200)), data: data}
	return nil
}

// create writes one file, which must not exist (O_EXCL: an entry that
// appears twice does not overwrite the first, and no link is followed).
func (x *extractor) create(w fileWrite) error {
	f, err := os.OpenFile(filepath.Join(x.dir, filepath.FromSlash(w.rel)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		reason := "cannot be written: " + lastPart(err)
		if errors.Is(err, os.ErrExist) {
			reason = "appears twice"
		}
		return &EntryError{Entry: w.shown, Reason: reason}
	}
	_, err = f.Write(w.data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &EntryError{Entry: w.shown, Reason: "cannot be written: " + lastPart(err)}
	}
	return nil
}

// mkdirAll makes the directory rel and those above it, once each.
func (x *extractor) mkdirAll(rel string) error {
	if x.dirs[rel] {
		return nil
	}
	if err := x.root.MkdirAll(rel, 0o700); err != nil {
		return err
	}
	for d := rel; d != "." && d != "/" && !x.dirs[d]; d = path.Dir(d) {
		x.dirs[d] = true
	}
	return nil
}

// maxLinkHops bounds the links followed in resolving one, as the kernel's
// 40 (ELOOP) does.
const maxLinkHops = 40

// checkLinks refuses every symbolic link whose target, following the
// archive's other links as the kernel would, leaves the extracted tree.
// The links are not written; a link that stays inside is left out as
// source-controller leaves it out.
func (x *extractor) checkLinks() error {
	for _, name := range slices.Sorted(maps.Keys(x.links)) {
		target := x.links[name]
		if !x.wanted(name) {
			continue
		}
		if reason := x.escapes(name, target); reason != "" {
			return &EntryError{Entry: safetext.Line(safetext.Clip(x.top+"/"+name, 200)), Reason: "is a symbolic link to " + strconvQuote(target) + " " + reason}
		}
	}
	return nil
}

// escapes resolves the link name → target within the archive's tree and
// says why it leaves the extracted part, or "" when it stays inside.
func (x *extractor) escapes(name, target string) string {
	if strings.HasPrefix(target, "/") {
		return "(an absolute path)"
	}
	stack := splitPath(path.Dir(name)) // the resolved path so far, from the root
	todo := splitPath(target)          // the components still to walk
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "outside the repository"
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		cur := strings.Join(stack, "/")
		if t, ok := x.links[cur]; ok {
			hops++
			if hops > maxLinkHops {
				return "through a loop of links"
			}
			if strings.HasPrefix(t, "/") {
				return "through " + strconvQuote(cur) + ", a link to an absolute path"
			}
			stack = stack[:len(stack)-1]
			todo = append(splitPath(t), todo...)
		}
	}
	if x.sub != "" {
		p := strings.Join(stack, "/")
		if p != x.sub && !strings.HasPrefix(p, x.sub+"/") {
			return "outside " + strconvQuote(x.sub)
		}
	}
	return ""
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// cleanRel cleans a path inside the repository: "" or "." or "/" for the
// root; .. is refused, a leading / or ./ is dropped.
func cleanRel(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", errors.New("has a NUL")
	}
	parts := strings.Split(strings.ReplaceAll(p, "\\", "/"), "/")
	var kept []string
	for _, c := range parts {
		switch c {
		case "", ".":
		case "..":
			return "", errors.New("leaves the repository (..)")
		default:
			kept = append(kept, c)
		}
	}
	return strings.Join(kept, "/"), nil
}

func strconvQuote(s string) string {
	return `"` + safetext.Line(safetext.Clip(s, 200)) + `"`
}

// lastPart is the end of an error's text, without the path a PathError
// repeats.
func lastPart(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// boundedReader fails with err once more than left bytes were read.
type boundedReader struct {
	r    io.Reader
	left int64
	err  error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a stream that ends exactly at the bound
		// from one that goes on.
		var one [1]byte
		for range 100 {
			n, err := b.r.Read(one[:])
			if n > 0 {
				return 0, b.err
			}
			if err != nil {
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
