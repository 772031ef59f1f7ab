package manifest

import (
	"slices"
	"strings"
	"testing"
)

// InChart layers the same values again over another chart's defaults, for
// an action that keeps the layout an agent runs with.
func TestInChart(t *testing.T) {
	version := "v17.2.0"
	in, err := Layers{Sets: []string{"replicas=3"}, AgentVersion: &version}.Input("prod", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.ChartAsked || in.Values.Chart != DefaultChartVersion {
		t.Fatalf("no --chart-version: asked %v, chart %s", in.ChartAsked, in.Values.Chart)
	}
	old, err := in.InChart("2.6.2")
	if err != nil || old.Values.Chart != "2.6.2" || old.Values.Replicas != 3 || old.Values.Image.Tag != "v17.2.0" || !old.Set.Has("replicas") || !old.Set.Has(KeyImageTag) {
		t.Fatalf("in 2.6.2: %+v, %v", old.Values, err)
	}
	if out, err := Render(old); err != nil || slices.Contains(strings.Fields(objectKinds(out)), "Service") {
		t.Errorf("2.6.2's layout has no Service: %s, %v", objectKinds(out), err)
	}
	if same, err := in.InChart(""); err != nil || same.Values.Chart != DefaultChartVersion {
		t.Errorf("the same chart: %v", err)
	}
	// A 2.15.0 key is refused by 2.6.2, by name.
	newer, _ := Layers{Sets: []string{"revisionHistoryLimit=3"}}.Input("prod", "", nil)
	if _, err := newer.InChart("2.6.2"); err == nil || !strings.Contains(err.Error(), "revisionHistoryLimit") {
		t.Errorf("a 2.15.0 key in 2.6.2: %v", err)
	}
	// Values that Layers did not make cannot be layered again.
	v, _ := Load()
	if _, err := (Input{Name: "prod", Values: v}).InChart("2.6.2"); err == nil {
		t.Error("a hand-made Input was layered again")
	}
	if asked, _ := (Layers{ChartVersion: "2.6.2"}).Input("prod", "", nil); !asked.ChartAsked {
		t.Error("--chart-version given: not ChartAsked")
	}
}

func objectKinds(out Output) string {
	var kinds []string
	for _, o := range out.Objects {
		kinds = append(kinds, o["kind"].(string))
	}
	return strings.Join(kinds, " ")
}
