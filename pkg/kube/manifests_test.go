package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeDocuments(t *testing.T) {
	cm := func(name string) string {
		return `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "` + name + `"}}`
	}
	pretty := "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\n    \"name\": \"%s\"\n  }\n}\n"
	for _, c := range []struct {
		name, data string
		want       []string // names, with the origin of each
		err        string
	}{
		{"YAML documents", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n", []string{"a x#1", "b x#3"}, ""},
		// jq '.items[]' and a loop of 'kubectl get -o json' write these:
		// every object counts, not only the first.
		{"JSON objects one per line", cm("a") + "\n" + cm("b") + "\n", []string{"a x#1", "b x#2"}, ""},
		{"JSON objects pretty-printed", strings.Replace(pretty, "%s", "a", 1) + strings.Replace(pretty, "%s", "b", 1), []string{"a x#1", "b x#2"}, ""},
		{"JSON objects with no space between", cm("a") + cm("b") + cm("c"), []string{"a x#1", "b x#2", "c x#3"}, ""},
		{"JSON, then YAML after ---", cm("a") + "\n" + cm("b") + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", []string{"a x#1", "b x#2", "c x#3"}, ""},
		{"a YAML flow mapping", "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n", []string{"a x#1"}, ""},
		{"a List", `{"apiVersion": "v1", "kind": "List", "items": [` + cm("a") + "," + cm("b") + "]}", []string{"a x#1 item 0", "b x#1 item 1"}, ""},
		{"JSON then garbage", cm("a") + "\nkind: x\n", nil, "x#1: after 1 JSON object(s)"},
		{"an object without a kind after a good one", cm("a") + `{"apiVersion": "v1"}`, nil, "x#2: an object needs apiVersion and kind"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ms, err := Decode("x", []byte(c.data))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.Ref.Name+" "+m.Origin)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestReadJSONStreamFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "objs.json")
	data := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}` + "\n" + `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}` + "\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	ms, err := readFile(context.Background(), path)
	if err != nil || len(ms) != 2 || ms[1].Ref.Name != "b" || ms[1].Origin != path+"#2" {
		t.Fatalf("%+v %v", ms, err)
	}
}
