package install

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// AgentVersion is the agentk version an action deploys, and why. GitLab
// supports agentk at KAS's minor version or one either side, and ships a
// release every month: install and upgrade follow KAS's version.
type AgentVersion struct {
	// Tag is the image tag deployed (image.tag), "v19.6.0".
	Tag string `json:"tag"`
	// Was is the tag the agent ran with before, when an upgrade moves it.
	Was string `json:"was,omitempty"`
	// Source is where Tag comes from: VersionFromKAS, VersionSet,
	// VersionRunning or VersionChart.
	Source string `json:"source"`
	// KAS is KAS's version as GitLab's /metadata gives it ("" when not
	// asked, or not given).
	KAS string `json:"kasVersion,omitempty"`
	// Chart is the chart version whose layout the objects follow.
	Chart string `json:"chart"`
	// Why says where Tag comes from, in words.
	Why string `json:"why"`
}

// Where an AgentVersion's tag comes from.
const (
	// VersionFromKAS: KAS's version, or the release before it when KAS
	// runs a pre-release (AgentRelease).
	VersionFromKAS = "kas"
	// VersionSet: --agent-version, or image.tag in the values.
	VersionSet = "set"
	// VersionRunning: the tag the agent runs with, kept.
	VersionRunning = "running"
	// VersionChart: the chart's agentk, KAS's version naming no release.
	VersionChart = "chart"
)

// Line is the choice in one line: "agentk v19.6.0: the version of KAS at
// gitlab.example.com".
func (v AgentVersion) Line() string {
	if v.Was != "" && v.Was != v.Tag {
		return fmt.Sprintf("agentk %s (from %s): %s", v.Tag, v.Was, v.Why)
	}
	return fmt.Sprintf("agentk %s: %s", v.Tag, v.Why)
}

// AgentRelease is the agentk release for KAS's version kas, as an image
// tag. agentk images are tagged vX.Y.Z for releases only, so:
//   - X.Y.Z, and X.Y.Z with build metadata (+...) or the edition suffix
//     -ee, is the release vX.Y.Z;
//   - any other suffix (-rcN, -pre, ...) marks a pre-release of X.Y.Z,
//     not released yet (pre is true): the tag is the newest release
//     certain to exist before it, the first of the minor version before
//     (X.Y-1.0; 17.11.0 for 18.0.0-rc1, majors taken to end at .11 as 15
//     to 17 did) for an X.Y.0, and X.Y.0 for an X.Y.Z with Z > 0. Which
//     later patches of that minor exist cannot be known without the
//     registry; --agent-version picks one.
//
// ok is false when kas is no version at all.
func AgentRelease(kas string) (tag string, pre, ok bool) {
	v, suffix, ok := splitVersion(kas)
	if !ok {
		return "", false, false
	}
	var rest []string
	for _, p := range strings.Split(suffix, "-") {
		if p != "" && !strings.EqualFold(p, "ee") {
			rest = append(rest, p)
		}
	}
	if len(rest) == 0 {
		return versionTag(v), false, true
	}
	if v[2] > 0 {
		return versionTag([3]int{v[0], v[1], 0}), true, true
	}
	if v[0] <= 0 && v[1] == 0 {
		return "", true, false
	}
	return versionTag(previousMinor(v)), true, true
}

// splitVersion reads "vX.Y.Z-suffix+build" as X.Y.Z and suffix.
func splitVersion(s string) (v [3]int, suffix string, ok bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, _, _ = strings.Cut(s, "+")
	core, suffix, _ := strings.Cut(s, "-")
	v, ok = parseVersion(core)
	return v, suffix, ok
}

func versionTag(v [3]int) string { return fmt.Sprintf("v%d.%d.%d", v[0], v[1], v[2]) }

// previousMinor is the .0 release of the minor version before v's
// (minorIndex's order: 16.11 comes before 17.0).
func previousMinor(v [3]int) [3]int {
	if v[1] > 0 {
		return [3]int{v[0], v[1] - 1, 0}
	}
	last, ok := lastMinor[v[0]-1]
	if !ok {
		last = 11
	}
	return [3]int{v[0] - 1, last, 0}
}

// newer reports whether version a is after b (both "vX.Y.Z..."); false
// when either is no version.
func newer(a, b string) bool {
	va, _, okA := splitVersion(a)
	vb, _, okB := splitVersion(b)
	if !okA || !okB {
		return false
	}
	for i := range va {
		if va[i] != vb[i] {
			return va[i] > vb[i]
		}
	}
	return false
}

// kasHost names KAS by the host of the address GitLab gives for it.
func kasHost(kas *gitlab.KAS) string {
	if u, err := url.Parse(kas.AgentURL); err == nil && u.Host != "" {
		return u.Host
	}
	return kas.AgentURL
}

// chooseVersion fills image.tag of in from KAS's version unless the user
// set it, and says which version the objects run and why.
func chooseVersion(in *manifest.Input, kas *gitlab.KAS) AgentVersion {
	chart, _ := manifest.LookupChart(in.Values.Chart)
	v := AgentVersion{KAS: kas.Version, Chart: chart.Version}
	host := kasHost(kas)
	if in.Set.Has(manifest.KeyImageTag) {
		v.Tag, v.Source = in.Values.Image.Tag, VersionSet
		if v.Tag == "" {
			v.Tag = chart.AppVersion
		}
		v.Why = "as given (--agent-version or image.tag)"
		if kas.Version != "" {
			v.Why += fmt.Sprintf("; KAS at %s is %s", host, kas.Version)
			if w := SkewWarning(v.Tag, kas.Version); w != "" {
				v.Why += ": " + w
			}
		}
		return v
	}
	tag, pre, ok := AgentRelease(kas.Version)
	switch {
	case kas.Version == "":
		v.Tag, v.Source = chart.AppVersion, VersionChart
		v.Why = fmt.Sprintf("chart %s's agentk, as GitLab does not say KAS's version", chart.Version)
		return v
	case !ok:
		v.Tag, v.Source = chart.AppVersion, VersionChart
		v.Why = fmt.Sprintf("chart %s's agentk, as KAS at %s gives the version %q, which names no release", chart.Version, host, kas.Version)
		return v
	case pre:
		core, _, _ := splitVersion(kas.Version)
		v.Why = fmt.Sprintf("KAS at %s runs %s, a pre-release of %s; %s is the newest release certain to exist before it (--agent-version picks a later patch)",
			host, kas.Version, strings.TrimPrefix(versionTag(core), "v"), tag)
	case tag != "v"+strings.TrimPrefix(kas.Version, "v"):
		v.Why = fmt.Sprintf("the release of KAS at %s, which gives its version as %s", host, kas.Version)
	default:
		v.Why = "the version of KAS at " + host
	}
	v.Tag, v.Source = tag, VersionFromKAS
	in.Values.Image.Tag = tag
	if newer(tag, chart.AppVersion) {
		newest := ""
		if chart == manifest.Charts[len(manifest.Charts)-1] {
			newest = ", the newest chart followed"
		}
		v.Why += fmt.Sprintf("; the objects keep chart %s's layout (agentk %s%s): only the image is newer", chart.Version, chart.AppVersion, newest)
	}
	return v
}

// kasAskTimeout bounds upgrade's question for KAS's version: an upgrade
// works without GitLab, so a GitLab that does not answer must not hold it.
const kasAskTimeout = 15 * time.Second

// upgradeVersion is the version upgrade runs when the user sets none:
// KAS's (AgentRelease), when GitLab answers and names the KAS the agent
// dials; else the version the agent runs, kept, saying why. in has the
// running agent's values (withCurrent); its image.tag is set to the
// choice.
func (a *action) upgradeVersion(ctx context.Context, in *manifest.Input, cur *installed) AgentVersion {
	chart, _ := manifest.LookupChart(in.Values.Chart)
	running := cur.Version
	if running == "" {
		running = in.Values.Image.Tag
	}
	if in.Set.Has(manifest.KeyImageTag) {
		v := AgentVersion{Tag: in.Values.Image.Tag, Was: running, Source: VersionSet, Chart: chart.Version, Why: "as given (--agent-version or image.tag)"}
		if v.Tag == "" {
			v.Tag = chart.AppVersion
		}
		return v
	}
	keep := func(kasVersion, why string) AgentVersion {
		tag := in.Values.Image.Tag
		if tag == "" {
			tag = chart.AppVersion
		}
		return AgentVersion{Tag: tag, Source: VersionRunning, KAS: kasVersion, Chart: chart.Version, Why: "kept as the agent runs: " + why}
	}
	if a.env.GitLab == nil {
		return keep("", "no GitLab credential at hand to ask for KAS's version (GITLAB_TOKEN or --gitlab-token-file gives one; --agent-version sets the version)")
	}
	kctx, cancel := context.WithTimeout(ctx, kasAskTimeout)
	defer cancel()
	kas, err := a.env.GitLab.DiscoverKAS(kctx)
	switch {
	case err != nil:
		return keep("", fmt.Sprintf("KAS's version is not known (%v)", err))
	case in.Values.Config.KasAddress == "":
		return keep(kas.Version, "it dials no KAS (receptive), so GitLab's KAS may not be its own (--agent-version moves it)")
	case !sameKASHost(kas.AgentURL, in.Values.Config.KasAddress):
		return keep(kas.Version, fmt.Sprintf("it dials %s, not %s, the KAS of the GitLab asked (--agent-version moves it)", in.Values.Config.KasAddress, kas.AgentURL))
	}
	choice := *in
	v := chooseVersion(&choice, kas)
	switch {
	case v.Source != VersionFromKAS && kas.Version == "":
		return keep("", "GitLab does not say KAS's version")
	case v.Source != VersionFromKAS:
		return keep(kas.Version, fmt.Sprintf("KAS's version %q names no release", kas.Version))
	case v.Tag == cur.Version: // it runs it already; a digest pin stays
		v.Tag = in.Values.Image.Tag
		return v
	case newer(cur.Version, v.Tag):
		// GitLab supports agentk a minor ahead of KAS, and a KAS
		// pre-release maps to the minor before: never a downgrade unasked.
		return keep(kas.Version, "it runs a newer release than KAS's "+v.Tag+" (--agent-version moves it)")
	}
	in.Values.Image.Tag, v.Was = v.Tag, running
	return v
}

// rotateVersion keeps, for a rotation, the chart layout the agent runs
// with unless the user names one (o.Input is layered again for it), and
// says which agentk version and layout the rotation renders: a rotation
// changes the token, never agentk's version or layout unless asked.
func rotateVersion(o *Options, cur *installed) (AgentVersion, error) {
	layout := ", as it runs"
	switch _, err := manifest.LookupChart(cur.Chart); {
	case o.Input.ChartAsked:
		layout = ", as --chart-version asks"
	case cur.Chart == "":
		layout = " (the layout it runs is not known)"
	case err != nil:
		layout = fmt.Sprintf(" (it runs chart %s's, which is not followed)", cur.Chart)
	default:
		in, err := o.Input.InChart(cur.Chart)
		if err != nil {
			return AgentVersion{}, fmt.Errorf("the agent runs chart %s's layout, which a rotation keeps unless --chart-version moves it: %w", cur.Chart, err)
		}
		o.Input = in
	}
	chart, _ := manifest.LookupChart(o.Input.Values.Chart)
	v := AgentVersion{Tag: TagValue(cur.Image), Source: VersionRunning, Chart: chart.Version, Why: "kept as the agent runs"}
	if o.Input.Set.Has(manifest.KeyImageTag) {
		v.Tag, v.Was, v.Source, v.Why = o.Input.Values.Image.Tag, cur.Version, VersionSet, "as given (--agent-version or image.tag)"
	}
	if v.Tag == "" {
		v.Tag = chart.AppVersion
	}
	v.Why += fmt.Sprintf("; chart %s's layout%s", chart.Version, layout)
	return v, nil
}
