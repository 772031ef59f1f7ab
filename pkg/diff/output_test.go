package diff

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestJSON: the document counts every action, says whether anything
// differs, and lists no objects as [] (the printer's golden files, in
// pkg/cmd/testdata, hold the whole shape).
func TestJSON(t *testing.T) {
	b, err := json.Marshal(JSON(&Result{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"differs":false,"summary":{"changed":0,"created":0,"error":0,"pruned":0,"skipped":0,"unchanged":0},"objects":[]}`; string(b) != want {
		t.Errorf("empty result: %s, want %s", b, want)
	}
	r := &Result{Objects: []Object{{Action: Unchanged}, {Action: Changed, Before: "a", After: "b"}, {Action: Failed, Error: "no CRD"}}}
	d := JSON(r)
	if !d.Differs || d.Summary[Changed] != 1 || d.Summary[Failed] != 1 || d.Summary[Unchanged] != 1 || d.Summary[Created] != 0 || len(d.Objects) != 3 {
		t.Errorf("JSON = %+v", d)
	}
	if b, _ := json.Marshal(d); strings.Contains(string(b), `"a"`) {
		t.Errorf("the texts compared are not part of the document: %s", b)
	}
	if !r.Differs() || !r.Failed() {
		t.Error("the result differs and has a failure")
	}
	if same := (&Result{Objects: []Object{{Action: Unchanged}}}); same.Differs() || same.Failed() {
		t.Error("an unchanged result differs")
	}
}
