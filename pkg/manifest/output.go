package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// WriteYAML writes the objects as YAML documents, each after a "---" line,
// with keys in sorted order so that the output is byte-for-byte repeatable.
func WriteYAML(w io.Writer, objs []Object) error {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", describeObject(o), err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteJSON writes the objects as one v1 List, as `kubectl get -o json` does.
func WriteJSON(w io.Writer, objs []Object) error {
	items := objs
	if items == nil {
		items = []Object{}
	}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
	b, err := json.MarshalIndent(list, "", "    ")
	if err != nil {
		return fmt.Errorf("encoding the object list: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func describeObject(o Object) string {
	meta, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v %v", o["kind"], meta["name"])
}
