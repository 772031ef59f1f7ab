package fluxbuild

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// RemoteError is a kustomization that asks for something over the network:
// a remote base or resource (a git repository, an http(s) URL). Build
// refuses it before kustomize runs, so nothing is fetched: kustomize
// itself would clone with the git binary or GET the URL, whatever the file
// system it is given (sigs.k8s.io/kustomize/api internal/loader
// FileLoader.New and Load).
type RemoteError struct {
	File  string // the kustomization file, relative to the repository
	Field string // e.g. "resources", "patches[].path"
	Ref   string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s asks for %q in %s: remote bases and resources are not fetched; vendor them into the repository",
		safetext.Line(e.File), safetext.Line(safetext.Clip(e.Ref, 200)), e.Field)
}

// scpUser is the user@ of an scp-like git URL (git@gitlab.com:group/repo),
// as kustomize's repospec reads it.
var scpUser = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// IsRemote reports whether kustomize would fetch ref rather than read it
// from the tree: anything with a scheme (https://, ssh://, file:// and the
// rest), git:: and gh: forms, github.com/… and user@host: forms; what
// kustomize's repospec and IsRemoteFile accept, and more.
func IsRemote(ref string) bool {
	s := strings.TrimSpace(ref)
	if strings.Contains(s, "\n") {
		return false // inline content, not a reference
	}
	l := strings.ToLower(s)
	for _, p := range []string{"git::", "gh:", "github.com/", "github.com:"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return strings.Contains(l, "://") || scpUser.MatchString(s)
}

// The fields of a kustomization that name files or directories, which
// kustomize loads through its loader (sigs.k8s.io/kustomize/api/types
// Kustomization): lists of references, and lists of objects with a path.
var (
	refLists = []string{"resources", "bases", "components", "crds", "configurations",
		"generators", "transformers", "validators", "patchesStrategicMerge"}
	pathLists = []string{"patches", "patchesJson6902", "replacements"}
	// loadedDirs are the lists whose directories are kustomizations too.
	loadedDirs = []string{"resources", "bases", "components", "generators", "transformers", "validators"}
	// configLists hold files that are plugin configurations, themselves
	// holding paths (a PatchTransformer's path, a ReplacementTransformer's
	// replacements[].path, a generator's files).
	configLists = []string{"generators", "transformers", "validators"}
)

// refuseRemote walks the kustomizations that the build of dirPath reads,
// from the one generated for it (top) down through every local directory
// they name, and refuses the first remote reference. Paths that leave root
// are not followed: the build's file system refuses them.
func refuseRemote(root, dirPath string, top []byte, topFile string) error {
	s := &remoteScan{root: root, seen: map[string]bool{dirPath: true}}
	return s.scan(dirPath, top, topFile, 0)
}

type remoteScan struct {
	root string
	seen map[string]bool
}

// maxScanDepth bounds the nesting of kustomizations followed.
const maxScanDepth = 64

func (s *remoteScan) rel(p string) string {
	if r, err := filepath.Rel(s.root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

// dir scans the kustomization file of dir, if it has one.
func (s *remoteScan) dir(dir string, depth int) error {
	if s.seen[dir] || depth > maxScanDepth {
		return nil
	}
	s.seen[dir] = true
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading %s: %w", s.rel(p), err)
		}
		if err := s.scan(dir, data, p, depth); err != nil {
			return err
		}
	}
	return nil
}

func (s *remoteScan) scan(dir string, data []byte, file string, depth int) error {
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return fmt.Errorf("reading %s: %w", s.rel(file), err)
	}
	refuse := func(field, ref string) error {
		return &RemoteError{File: s.rel(file), Field: field, Ref: ref}
	}
	for _, f := range refLists {
		for _, ref := range stringList(k[f]) {
			if IsRemote(ref) {
				return refuse(f, ref)
			}
		}
	}
	for _, f := range pathLists {
		for _, item := range objectList(k[f]) {
			if p, ok := item["path"].(string); ok && IsRemote(p) {
				return refuse(f+"[].path", p)
			}
		}
	}
	if oa, ok := k["openapi"].(map[string]any); ok {
		if p, ok := oa["path"].(string); ok && IsRemote(p) {
			return refuse("openapi.path", p)
		}
	}
	for _, f := range []string{"configMapGenerator", "secretGenerator"} {
		for _, g := range objectList(k[f]) {
			if err := generatorSources(g, func(field, ref string) error { return refuse(f+"[]."+field, ref) }); err != nil {
				return err
			}
		}
	}
	// Plugin configuration files may hold paths of their own.
	for _, f := range configLists {
		for _, ref := range stringList(k[f]) {
			if p, ok := s.local(dir, ref); ok {
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					if err := s.config(p); err != nil {
						return err
					}
				}
			}
		}
	}
	// Local directories are kustomizations: follow them.
	for _, f := range loadedDirs {
		for _, ref := range stringList(k[f]) {
			if p, ok := s.local(dir, ref); ok {
				if fi, err := os.Stat(p); err == nil && fi.IsDir() {
					if err := s.dir(p, depth+1); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// config scans a plugin configuration file (one or more YAML documents)
// for remote paths at any depth, metadata aside.
func (s *remoteScan) config(p string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.rel(p), err)
	}
	for doc := range bytes.SplitSeq(data, []byte("\n---")) {
		var v any
		if yaml.Unmarshal(doc, &v) != nil {
			continue // kustomize will say what is wrong with it
		}
		if field, ref, found := remoteIn(v, ""); found {
			return &RemoteError{File: s.rel(p), Field: field, Ref: ref}
		}
	}
	return nil
}

// pathKeys are the keys of plugin configurations that name files.
var pathKeys = map[string]bool{"path": true, "paths": true, "files": true, "envs": true, "env": true, "resources": true}

func remoteIn(v any, at string) (field, ref string, found bool) {
	switch v := v.(type) {
	case map[string]any:
		for key, val := range v {
			if key == "metadata" {
				continue
			}
			if pathKeys[key] {
				for _, r := range append(stringList(val), oneString(val)...) {
					if IsRemote(stripKey(r)) {
						return at + key, r, true
					}
				}
			}
			if f, r, ok := remoteIn(val, at+key+"."); ok {
				return f, r, ok
			}
		}
	case []any:
		for _, item := range v {
			if f, r, ok := remoteIn(item, at); ok {
				return f, r, ok
			}
		}
	}
	return "", "", false
}

// generatorSources checks a configMapGenerator's or secretGenerator's
// files (key=path or path), envs and env.
func generatorSources(g map[string]any, refuse func(field, ref string) error) error {
	for _, f := range []string{"files", "envs"} {
		for _, ref := range stringList(g[f]) {
			if IsRemote(stripKey(ref)) {
				return refuse(f, ref)
			}
		}
	}
	if env, ok := g["env"].(string); ok && IsRemote(env) {
		return refuse("env", env)
	}
	return nil
}

// stripKey drops the key= of a generator's file source (kustomize's
// kv loader: "key=path").
func stripKey(ref string) string {
	if k, p, ok := strings.Cut(ref, "="); ok && !strings.Contains(k, "/") && !strings.Contains(k, ":") {
		return p
	}
	return ref
}

// local resolves a reference relative to dir when it stays in the tree.
func (s *remoteScan) local(dir, ref string) (string, bool) {
	if strings.Contains(ref, "\n") || filepath.IsAbs(ref) {
		return "", false
	}
	p := filepath.Join(dir, filepath.FromSlash(ref))
	if r, err := filepath.Rel(s.root, p); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return p, true
}

// stringList is v's strings, when v is a list.
func stringList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// oneString is v as a one-element list, when v is a string.
func oneString(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	return nil
}

// objectList is v's objects, when v is a list.
func objectList(v any) []map[string]any {
	l, _ := v.([]any)
	var out []map[string]any
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
