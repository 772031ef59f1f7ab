package kube

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
)

// Manifest is one object read from the user's input. It is kept as compact
// JSON, decoded when needed: a decoded object takes several times the
// memory, and a large diff holds thousands.
type Manifest struct {
	// Raw is the object as JSON.
	Raw []byte
	// Ref names it as written (the namespace may be empty).
	Ref Ref
	// Origin says where it came from: a file (with its document number),
	// "stdin" or a kustomization.
	Origin string
}

// Object decodes the manifest, numbers as int64 where integral.
func (m Manifest) Object() (*unstructured.Unstructured, error) {
	o := &unstructured.Unstructured{}
	if err := o.UnmarshalJSON(m.Raw); err != nil {
		return nil, fmt.Errorf("%s: %w", m.Origin, err)
	}
	return o, nil
}

// FromObjects wraps objects built in memory (a rendered agent), in order.
func FromObjects(objs []map[string]any, origin string) ([]Manifest, error) {
	out := make([]Manifest, 0, len(objs))
	for _, obj := range objs {
		o := &unstructured.Unstructured{Object: obj}
		b, err := o.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", origin, err)
		}
		out = append(out, Manifest{Raw: b, Ref: RefOf(o), Origin: origin})
	}
	return out, nil
}

// header is the part of an object needed to place it.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// Sources are the inputs of -f, -R and -k, as kubectl takes them.
type Sources struct {
	Filenames []string
	Recursive bool
	Kustomize string
	Stdin     io.Reader
}

var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// Read reads every object of the sources, in order. Lists are flattened.
// Each file and stdin is capped at input.MaxManifests; reads end with ctx.
func (s Sources) Read(ctx context.Context) ([]Manifest, error) {
	var out []Manifest
	for _, name := range s.Filenames {
		if name == "-" {
			if s.Stdin == nil {
				return nil, fmt.Errorf("no stdin to read")
			}
			data, err := input.ReadAll(ctx, s.Stdin, input.MaxManifests, "manifests from stdin")
			if err != nil {
				return nil, err
			}
			objs, err := Decode("stdin", data)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		if !fi.IsDir() {
			objs, err := readFile(ctx, name)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		err = filepath.WalkDir(name, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != name && !s.Recursive {
					return filepath.SkipDir
				}
				return nil
			}
			if !manifestExts[strings.ToLower(filepath.Ext(path))] {
				return nil
			}
			objs, err := readFile(ctx, path)
			out = append(out, objs...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if s.Kustomize != "" {
		k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
		rm, err := k.Run(filesys.MakeFsOnDisk(), s.Kustomize)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %w", s.Kustomize, err)
		}
		data, err := rm.AsYaml()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %w", s.Kustomize, err)
		}
		objs, err := Decode("kustomization "+s.Kustomize, data)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

func readFile(ctx context.Context, path string) ([]Manifest, error) {
	data, err := input.ReadFile(ctx, path, nil, input.MaxManifests, "manifests")
	if err != nil {
		return nil, err
	}
	return Decode(path, data)
}

// Decode reads the YAML or JSON documents of data; origin names the input
// in errors. JSON objects may follow one another without "---" (as jq and a
// loop of 'kubectl get -o json' write them); each is a document. Lists are
// flattened.
func Decode(origin string, data []byte) ([]Manifest, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []Manifest
	for doc := 0; ; {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", origin, doc+1, err)
		}
		docs, err := jsonStream(raw)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", origin, doc+1, err)
		}
		if docs == nil {
			j, err := yaml.YAMLToJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("%s#%d: %w", origin, doc+1, err)
			}
			docs = [][]byte{j}
		}
		for _, j := range docs {
			doc++
			ms, err := objects(j, fmt.Sprintf("%s#%d", origin, doc))
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		}
	}
}

// jsonStream splits raw into its values when it is JSON objects one after
// another; nil when it is YAML (a flow mapping such as {kind: x} starts with
// "{" too). A stream that turns out not to be JSON after its first object is
// an error, not a document read in part.
func jsonStream(raw []byte) ([][]byte, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	var out [][]byte
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			if len(out) == 0 {
				return nil, nil
			}
			// What YAML would pass over after them: comments, "...".
			if rest := t[dec.InputOffset():]; onlyComments(rest) {
				return out, nil
			}
			return nil, fmt.Errorf("after %d JSON object(s): %v", len(out), err)
		}
		out = append(out, v)
	}
}

// onlyComments reports text that is blank lines, # comments and "..."
// (YAML's end of document).
func onlyComments(b []byte) bool {
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && l != "..." && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// objects is the manifests of one document: none for an empty one, the
// items of a List.
func objects(j []byte, where string) ([]Manifest, error) {
	if t := bytes.TrimSpace(j); len(t) == 0 || bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte("{}")) {
		return nil, nil
	}
	var h header
	if err := json.Unmarshal(j, &h); err != nil {
		return nil, fmt.Errorf("%s: not an object: %v", where, err)
	}
	if h.APIVersion == "" || h.Kind == "" {
		return nil, fmt.Errorf("%s: an object needs apiVersion and kind", where)
	}
	if !strings.HasSuffix(h.Kind, "List") || h.Items == nil {
		m, err := manifest(j, where)
		return []Manifest{m}, err
	}
	out := make([]Manifest, 0, len(h.Items))
	for i, item := range h.Items {
		m, err := manifest(item, fmt.Sprintf("%s item %d", where, i))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func manifest(j []byte, where string) (Manifest, error) {
	var h header
	if err := json.Unmarshal(j, &h); err != nil {
		return Manifest{}, fmt.Errorf("%s: not an object: %v", where, err)
	}
	if h.APIVersion == "" || h.Kind == "" {
		return Manifest{}, fmt.Errorf("%s: an object needs apiVersion and kind", where)
	}
	if h.Metadata.Name == "" {
		return Manifest{}, fmt.Errorf("%s: %s has no metadata.name (generateName cannot be diffed or applied)", where, h.Kind)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, j); err != nil {
		return Manifest{}, fmt.Errorf("%s: %v", where, err)
	}
	return Manifest{
		Raw:    compact.Bytes(),
		Ref:    Ref{APIVersion: h.APIVersion, Kind: h.Kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name},
		Origin: where,
	}, nil
}
