package manifest

import (
	"fmt"
	"strings"
)

// Chart is one version of the gitlab-agent chart that Render reproduces.
type Chart struct {
	Version    string
	AppVersion string // the agentk image tag it deploys by default
	schema     *field
	defaults   map[string]any
}

// DefaultChartVersion is the chart version followed unless the user asks
// for another (--chart-version).
const DefaultChartVersion = "2.15.0"

var (
	chart262  = &Chart{Version: "2.6.2", AppVersion: "v17.3.1", schema: schema262()}
	chart2150 = &Chart{Version: "2.15.0", AppVersion: "v18.0.0", schema: schema2150()}
	// Charts are the versions followed, oldest first.
	Charts = []*Chart{chart262, chart2150}
)

func init() {
	base := mustDecode(defaults262)
	chart262.defaults = base
	newer := mustDecode(defaults262)
	coalesce(newer, mustDecode(defaults2150))
	chart2150.defaults = newer
}

func mustDecode(y string) map[string]any {
	m, err := decodeYAMLMap([]byte(y))
	if err != nil {
		panic(fmt.Sprintf("built-in chart defaults: %v", err))
	}
	return m
}

// ChartVersions lists the versions followed, for help and errors.
func ChartVersions() string {
	vs := make([]string, len(Charts))
	for i, c := range Charts {
		vs[i] = c.Version
	}
	return strings.Join(vs, ", ")
}

// LookupChart finds a followed chart version ("" is the default).
func LookupChart(version string) (*Chart, error) {
	if version == "" {
		version = DefaultChartVersion
	}
	v := strings.TrimPrefix(version, "v")
	for _, c := range Charts {
		if c.Version == v {
			return c, nil
		}
	}
	return nil, fmt.Errorf("chart version %q is not followed: this plugin renders gitlab-agent chart %s", version, ChartVersions())
}

// chartOf is the chart v is for.
func chartOf(v Values) *Chart {
	c, err := LookupChart(v.Chart)
	if err != nil {
		return chart2150 // Load only sets versions LookupChart knows
	}
	return c
}

// legacy reports chart 2.6.2's layout.
func (c *Chart) legacy() bool { return c == chart262 }

// Receptive reports whether the chart renders receptive agents.
func (c *Chart) Receptive() bool { return !c.legacy() }

// defaultsCopy is a fresh copy of the chart's defaults, to merge into.
func (c *Chart) defaultsCopy() map[string]any {
	out := map[string]any{}
	coalesce(out, c.defaults)
	return out
}
