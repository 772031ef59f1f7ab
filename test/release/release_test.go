package release

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

const repoRoot = "../.."

// goreleaserConfig is the part of .goreleaser.yaml that decides archive names.
type goreleaserConfig struct {
	ProjectName string `json:"project_name"`
	Builds      []struct {
		ID     string   `json:"id"`
		Binary string   `json:"binary"`
		Goos   []string `json:"goos"`
		Goarch []string `json:"goarch"`
	} `json:"builds"`
	Archives []struct {
		NameTemplate    string   `json:"name_template"`
		Formats         []string `json:"formats"`
		FormatOverrides []struct {
			Goos    string   `json:"goos"`
			Formats []string `json:"formats"`
		} `json:"format_overrides"`
		Files []string `json:"files"`
	} `json:"archives"`
}

// platformArchive is one archive and the platform it is for.
type platformArchive struct{ os, arch, file string }

// expectedArchives lists what goreleaser makes for tag.
func expectedArchives(t *testing.T, tag string) ([]platformArchive, string) {
	t.Helper()
	var cfg goreleaserConfig
	data, err := os.ReadFile(filepath.Join(repoRoot, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if len(cfg.Builds) != 1 || len(cfg.Archives) != 1 {
		t.Fatalf(".goreleaser.yaml: want one build and one archive, got %d and %d", len(cfg.Builds), len(cfg.Archives))
	}
	b, a := cfg.Builds[0], cfg.Archives[0]
	if b.Binary != "kubectl-gitlab_agent" {
		t.Errorf("binary is %q: kubectl dispatches `kubectl gitlab-agent` only to kubectl-gitlab_agent", b.Binary)
	}
	if !slices.Contains(a.Files, "LICENSE") {
		t.Error("archives lack LICENSE, which krew installs")
	}
	tmpl, err := template.New("name").Option("missingkey=error").Parse(a.NameTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var out []platformArchive
	for _, goos := range b.Goos {
		for _, goarch := range b.Goarch {
			format := a.Formats[0]
			for _, o := range a.FormatOverrides {
				if o.Goos == goos {
					format = o.Formats[0]
				}
			}
			var name bytes.Buffer
			err := tmpl.Execute(&name, map[string]string{"ProjectName": cfg.ProjectName, "Tag": tag, "Os": goos, "Arch": goarch})
			if err != nil {
				t.Fatalf("archive name_template: %v", err)
			}
			out = append(out, platformArchive{goos, goarch, name.String() + "." + format})
		}
	}
	return out, b.Binary
}

// krewPlugin is the krew-index manifest.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			Sha256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkManifest compares a krew manifest with goreleaser's archives.
func checkManifest(t *testing.T, what string, data []byte) {
	t.Helper()
	var p krewPlugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" || p.Metadata.Name != "gitlab-agent" {
		t.Errorf("%s: %s %s %s", what, p.APIVersion, p.Kind, p.Metadata.Name)
	}
	if p.Spec.Homepage == "" || p.Spec.ShortDescription == "" || p.Spec.Description == "" {
		t.Errorf("%s: krew-index needs homepage, shortDescription and description", what)
	}
	archives, bin := expectedArchives(t, p.Spec.Version)
	want := map[string]string{}
	for _, a := range archives {
		want[a.os+"/"+a.arch] = a.file
	}
	got := map[string]string{}
	for _, pl := range p.Spec.Platforms {
		key := pl.Selector.MatchLabels["os"] + "/" + pl.Selector.MatchLabels["arch"]
		got[key] = path.Base(pl.URI)
		wantBin := bin
		if pl.Selector.MatchLabels["os"] == "windows" {
			wantBin += ".exe"
		}
		if pl.Bin != wantBin {
			t.Errorf("%s %s: bin %q, want %q", what, key, pl.Bin, wantBin)
		}
		if !shaRE.MatchString(pl.Sha256) {
			t.Errorf("%s %s: sha256 %q is not a sha256", what, key, pl.Sha256)
		}
		if !strings.Contains(pl.URI, "/releases/download/"+p.Spec.Version+"/") {
			t.Errorf("%s %s: uri %s is not under the release %s", what, key, pl.URI, p.Spec.Version)
		}
		froms := []string{}
		for _, f := range pl.Files {
			froms = append(froms, f.From)
		}
		if !slices.Contains(froms, wantBin) || !slices.Contains(froms, "LICENSE") {
			t.Errorf("%s %s: files %v must install %s and LICENSE", what, key, froms, wantBin)
		}
	}
	if fmt.Sprint(sortedMap(got)) != fmt.Sprint(sortedMap(want)) {
		t.Errorf("%s names archives %v; .goreleaser.yaml makes %v", what, sortedMap(got), sortedMap(want))
	}
}

// TestKrewTemplateMatchesGoreleaser renders krew.yaml as the release bot would
// and checks that it names exactly the archives goreleaser makes.
func TestKrewTemplateMatchesGoreleaser(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join(repoRoot, "krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const tag = "v9.8.7"
	archives, _ := expectedArchives(t, tag)
	sums := map[string]string{}
	for _, a := range archives {
		sums[a.file] = strings.Repeat("ab", 32)
	}
	out, err := RenderKrewTemplate(tmpl, tag, sums)
	if err != nil {
		t.Fatalf("krew.yaml: %v", err)
	}
	checkManifest(t, "krew.yaml", out)
}

// TestKrewIndexManifest checks plugins/gitlab-agent.yaml the same way, and that
// it is krew.yaml rendered for its version.
func TestKrewIndexManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "plugins", "gitlab-agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, "plugins/gitlab-agent.yaml", data)

	var p krewPlugin
	_ = yaml.Unmarshal(data, &p)
	sums := map[string]string{}
	for _, pl := range p.Spec.Platforms {
		sums[path.Base(pl.URI)] = pl.Sha256
	}
	tmpl, err := os.ReadFile(filepath.Join(repoRoot, "krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := RenderKrewTemplate(tmpl, p.Spec.Version, sums)
	if err != nil {
		t.Fatal(err)
	}
	if got := stripComments(data); !bytes.Equal(got, want) {
		t.Error("plugins/gitlab-agent.yaml is not krew.yaml rendered for its version: run make krew-manifest")
	}
}

// TestKrewDescriptionSaysWhatIsBuilt: krew shows the description to people
// choosing a plugin; it names what the plugin does, not what is to come.
func TestKrewDescriptionSaysWhatIsBuilt(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"install", "status", "kubeconfig", "diff", "upgrade", "uninstall", "rotates", "renders", "proxy", "doctor"} {
		if !bytes.Contains(data, []byte(word)) {
			t.Errorf("krew.yaml's description does not name %q", word)
		}
	}
	for _, stale := range []string{"being built", "to come", "coming soon"} {
		if bytes.Contains(data, []byte(stale)) {
			t.Errorf("krew.yaml's description says %q", stale)
		}
	}
}

func stripComments(data []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			b.WriteString(line)
		}
	}
	return b.Bytes()
}

func TestRenderKrewTemplateMissingChecksum(t *testing.T) {
	_, err := RenderKrewTemplate([]byte(`{{addURIAndSha "https://x/{{ .TagName }}/a.tar.gz" .TagName }}`), "v1", nil)
	if err == nil || !strings.Contains(err.Error(), "a.tar.gz") {
		t.Errorf("error = %v", err)
	}
}

func sortedMap(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
