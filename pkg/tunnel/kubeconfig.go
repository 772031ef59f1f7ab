// Package tunnel reaches clusters through KAS's Kubernetes API proxy:
// kubeconfig entries that use the plugin as an exec credential plugin, the
// credentials themselves (k8s_proxy personal access tokens, cached per user,
// or CI job tokens), and a local proxy for tools without exec plugins.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
)

// Names are the kubeconfig entry names, as the GitLab CLI writes them.
type Names struct {
	Cluster, User, Context string
}

// EntryNames names the entries for an agent: cluster after GitLab's host
// ("gitlab_example_com"), user "<cluster>-<agent ID>", context
// "<cluster>-<project path with / as _>-<agent name>".
// The project path and agent name may come from GitLab's answers: they are
// checked against GitLab's own rules, so that no control character or shell
// syntax becomes a context name. So is the GitLab URL's host and path, as
// decoded ("%0A" would be a newline in every name).
func EntryNames(gitlabURL, projectPath, agentName string, agentID int64) (Names, error) {
	u, err := url.Parse(gitlabURL)
	if err != nil || u.Host == "" {
		return Names{}, fmt.Errorf("invalid GitLab URL %q", gitlabURL)
	}
	if !urlNamePattern.MatchString(u.Host + u.Path) {
		return Names{}, fmt.Errorf("GitLab URL %q cannot name kubeconfig entries: its host and path may hold only letters, digits and . _ ~ - : / [ ] (decoded)", gitlabURL)
	}
	if !projectPathPattern.MatchString(projectPath) {
		return Names{}, fmt.Errorf("invalid project path %q: GitLab's paths are letters, digits, '_', '-' and '.' between slashes", projectPath)
	}
	if err := agentname.Validate(agentName); err != nil {
		return Names{}, err
	}
	cluster := strings.NewReplacer(".", "_", "/", "_", ":", "_").Replace(strings.Trim(u.Host+u.Path, "/"))
	return Names{
		Cluster: cluster,
		User:    cluster + "-" + strconv.FormatInt(agentID, 10),
		Context: cluster + "-" + strings.ReplaceAll(projectPath, "/", "_") + "-" + agentName,
	}, nil
}

// urlNamePattern is what a GitLab URL's host (a name, an IPv4 or bracketed
// IPv6 address, a port) and path (GitLab's relative URL root, "/gitlab")
// may hold to become part of a kubeconfig name.
var urlNamePattern = regexp.MustCompile(`^[A-Za-z0-9._~:/\[\]-]+$`)

// projectPathPattern is GitLab's rule for namespace and project paths.
var projectPathPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)

// Entry is what kubeconfig writes for one agent.
type Entry struct {
	Names
	// Server is KAS's Kubernetes API proxy URL.
	Server string
	// CA is a PEM bundle (--ca-file's) for a KAS behind a private CA (nil
	// for the system roots).
	CA []byte
	// Command is the plugin as kubectl should run it (see PluginCommand);
	// Args its get-token arguments.
	Command string
	Args    []string
	// UseContext makes the new context the current one.
	UseContext bool
}

// WriteResult says where the entry went and what else was mended.
type WriteResult struct {
	File string
	// Repaired names other users whose plugin command was replaced: it
	// was gone (a krew upgrade removes the old version's directory) or a
	// version-bound spelling of this plugin.
	Repaired []string
}

// AgentAccess is what a kubeconfig needs to reach one agent's cluster through KAS
// with the plugin's get-token as its exec credential plugin.
type AgentAccess struct {
	Names
	// GitLabURL is the GitLab get-token asks for the credential; AgentID
	// the agent it is for.
	GitLabURL string
	AgentID   int64
	// Server is KAS's Kubernetes API proxy URL; CA as in Entry.
	Server string
	CA     []byte
	// CI makes get-token pass the job's CI_JOB_TOKEN; otherwise TokenFile,
	// when given, is the file get-token reads the GitLab token from.
	CI        bool
	TokenFile string
	// CacheMode is get-token's --cache-mode (not CI): written when it is
	// not the default, so that get-token's default applies otherwise.
	CacheMode CacheMode
	// Argv0 is how the plugin was started (os.Args[0]), for PluginCommand.
	Argv0 string
	// UseContext makes the new context the current one.
	UseContext bool
}

// KubeconfigFor is the entry that reaches a: the plugin's command as
// PluginCommand finds it and get-token's arguments (a token file made
// absolute: kubectl runs the plugin from any directory). Nothing secret is
// in it: get-token finds the credential when kubectl runs it.
func KubeconfigFor(a AgentAccess) (Entry, error) {
	command, err := PluginCommand(a.Argv0)
	if err != nil {
		return Entry{}, err
	}
	args := []string{"get-token", "--gitlab-url", a.GitLabURL, "--agent-id", strconv.FormatInt(a.AgentID, 10)}
	if a.CI {
		args = append(args, "--ci")
	} else if a.TokenFile != "" {
		abs, err := filepath.Abs(a.TokenFile)
		if err != nil {
			return Entry{}, err
		}
		args = append(args, "--gitlab-token-file", abs)
	}
	if !a.CI && a.CacheMode != "" && a.CacheMode != CacheKeyring {
		args = append(args, "--cache-mode", string(a.CacheMode))
	}
	return Entry{Names: a.Names, Server: a.Server, CA: a.CA, Command: command, Args: args, UseContext: a.UseContext}, nil
}

// proxyContext names the cluster, user and context of the kubeconfig that
// WriteProxyKubeconfig writes for agent.
func proxyContext(agent string) string { return "gitlab-agent-proxy-" + agent }

// WriteProxyKubeconfig writes to path a kubeconfig whose one context, the
// current one, reaches the local proxy at server with no credential (the
// proxy attaches it). The file is replaced whole and at once; a new one
// has mode 0600, an old one keeps its mode.
func WriteProxyKubeconfig(path, server, agent string) error {
	// The name may come from GitLab's answer (an agent given by ID).
	if err := agentname.Validate(agent); err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	name := proxyContext(agent)
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return secretfile.Replace(path, b)
}

// installHint tells a user without the plugin how to get it.
const installHint = `kubectl-gitlab_agent is needed to reach this cluster through GitLab's agent.
Install it with 'kubectl krew install gitlab-agent', or from
https://github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/releases`

// PluginName is the plugin's file name; kubectl runs it for `kubectl gitlab-agent`.
const PluginName = "kubectl-gitlab_agent"

// kubeconfigLockWait bounds the wait for another writer of the kubeconfig.
const kubeconfigLockWait = 15 * time.Second

// WriteKubeconfig adds or updates the entry's cluster, user and context in
// the kubeconfig kubectl would use (explicitPath when given). Each file is
// changed under client-go's lock (FILE.lock, waited for with backoff), as
// text: every other entry, comment and byte stays as it was; the new file
// replaces the old at once, so a reader never sees it cut short. Users of
// other agents whose plugin command no longer exists are mended on the way.
func WriteKubeconfig(ctx context.Context, explicitPath string, e Entry) (WriteResult, error) {
	po := clientcmd.NewDefaultPathOptions()
	po.LoadingRules.ExplicitPath = explicitPath
	dest := po.GetDefaultFilename()
	files := po.GetLoadingPrecedence()
	if explicitPath != "" {
		files = []string{explicitPath}
	}
	// Each entry goes to the file that already holds one of its name (as
	// client-go's ModifyConfig does), else to dest.
	where := map[string]string{"clusters/" + e.Cluster: dest, "users/" + e.User: dest, "contexts/" + e.Context: dest}
	injected := map[string]bool{}
	for i := len(files) - 1; i >= 0; i-- { // the first file wins
		cfg, err := ReadKubeconfig(ctx, files[i])
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return WriteResult{}, err
		}
		injected[files[i]] = holdsJobToken(cfg)
		if _, ok := cfg.Clusters[e.Cluster]; ok {
			where["clusters/"+e.Cluster] = files[i]
		}
		if _, ok := cfg.AuthInfos[e.User]; ok {
			where["users/"+e.User] = files[i]
		}
		if _, ok := cfg.Contexts[e.Context]; ok {
			where["contexts/"+e.Context] = files[i]
		}
	}
	touched := map[string]bool{dest: true}
	for _, f := range where {
		touched[f] = true
	}
	res := WriteResult{File: dest}
	for f := range touched {
		if injected[f] {
			return res, fmt.Errorf("kubeconfig %s is the one GitLab writes for this job (it holds the job token): its contexts work as they are (--context PROJECT_PATH:AGENT_NAME); write a new context elsewhere with --kubeconfig FILE, e.g. --kubeconfig \"$CI_PROJECT_DIR/.kube/config\"", f)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(touched)) {
		repaired, err := editFile(ctx, f, e, where, f == dest && e.UseContext)
		if err != nil {
			return res, err
		}
		res.Repaired = append(res.Repaired, repaired...)
	}
	return res, nil
}

// holdsJobToken says whether cfg is the kubeconfig GitLab writes for a CI
// job: a user token "ci:<agent-id>:<token>". That file is GitLab's to
// write, and every command can use it as it is.
func holdsJobToken(cfg *clientcmdapi.Config) bool {
	for _, u := range cfg.AuthInfos {
		if strings.HasPrefix(u.Token, "ci:") {
			return true
		}
	}
	return false
}

// editFile writes into file the parts of e that where assigns to it. A
// symbolic link to the file is followed only when secretfile.Resolve trusts
// it: one that another user planted in a shared directory would have the
// file it points at written over.
func editFile(ctx context.Context, file string, e Entry, where map[string]string, useContext bool) ([]string, error) {
	real, err := secretfile.Resolve(file)
	if err != nil {
		return nil, fmt.Errorf("writing kubeconfig %s: %w", file, err)
	}
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		return nil, fmt.Errorf("creating the kubeconfig's directory: %w", err)
	}
	unlock, err := createLock(ctx, file+".lock", kubeconfigLockWait)
	if err != nil {
		var busy *LockBusyError
		if errors.As(err, &busy) {
			return nil, fmt.Errorf("kubeconfig %s: %w", file, err)
		}
		return nil, fmt.Errorf("locking kubeconfig %s: %w", file, err)
	}
	defer unlock()
	src, err := kubeconfigBytes(ctx, real)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	old, err := clientcmd.Load(src)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", file, err)
	}
	want := old.DeepCopy()
	if where["clusters/"+e.Cluster] == file {
		// How the credential travels to the server (TLS checks, the name
		// verified, an HTTP proxy) was chosen for that server: kept while
		// the server stays, dropped when the entry moves to another. The
		// entry's extensions stay either way.
		cluster := clientcmdapi.NewCluster()
		if prev, ok := old.Clusters[e.Cluster]; ok {
			if prev.Server == e.Server {
				cluster = prev.DeepCopy()
			} else {
				for k, v := range prev.Extensions {
					cluster.Extensions[k] = v.DeepCopyObject()
				}
			}
		}
		cluster.Server = e.Server
		cluster.CertificateAuthority = ""
		cluster.CertificateAuthorityData = nil
		if len(e.CA) > 0 {
			cluster.CertificateAuthorityData = e.CA
			// A CA to check against and no check at all cannot both hold
			// (client-go refuses the pair).
			cluster.InsecureSkipTLSVerify = false
		}
		cluster.LocationOfOrigin = ""
		want.Clusters[e.Cluster] = cluster
	}
	if where["users/"+e.User] == file {
		want.AuthInfos[e.User] = execUser(e.Command, e.Args)
	}
	if where["contexts/"+e.Context] == file {
		c := clientcmdapi.NewContext()
		if prev, ok := old.Contexts[e.Context]; ok {
			c = prev.DeepCopy()
		}
		c.Cluster, c.AuthInfo, c.LocationOfOrigin = e.Cluster, e.User, ""
		want.Contexts[e.Context] = c
	}
	if useContext {
		want.CurrentContext = e.Context
	}
	var repaired []string
	for name, u := range old.AuthInfos {
		if name != e.User && stalePluginCommand(u, e.Command) {
			fixed := u.DeepCopy()
			fixed.Exec.Command = e.Command
			fixed.LocationOfOrigin = ""
			want.AuthInfos[name] = fixed
			repaired = append(repaired, name)
		}
	}
	slices.Sort(repaired)

	out, err := editText(src, old, want)
	if err != nil {
		// A layout the line editor does not handle (JSON, flow style):
		// write the whole file as client-go would.
		if out, err = clientcmd.Write(*want); err != nil {
			return nil, fmt.Errorf("writing kubeconfig %s: %w", file, err)
		}
	}
	if err := secretfile.Replace(real, out); err != nil {
		return nil, fmt.Errorf("writing kubeconfig %s: %w", file, err)
	}
	return repaired, nil
}

func execUser(command string, args []string) *clientcmdapi.AuthInfo {
	user := clientcmdapi.NewAuthInfo()
	user.Exec = &clientcmdapi.ExecConfig{
		APIVersion:      "client.authentication.k8s.io/v1",
		Command:         command,
		Args:            args,
		InstallHint:     installHint,
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
	}
	return user
}

// editText changes src from old into want line by line, and checks that the
// result reads back as want; errNotEditable when it cannot.
func editText(src []byte, old, want *clientcmdapi.Config) ([]byte, error) {
	if strings.TrimSpace(string(src)) == "" {
		return nil, errNotEditable // a new file: written whole
	}
	rendered, err := clientcmd.Write(*onlyChanged(old, want))
	if err != nil {
		return nil, err
	}
	texts, err := itemTexts(rendered)
	if err != nil {
		return nil, err
	}
	out := src
	for _, list := range []string{"clusters", "users", "contexts"} {
		for _, name := range slices.Sorted(maps.Keys(texts[list])) {
			if out, err = setItem(out, item{list: list, name: name, text: texts[list][name]}); err != nil {
				return nil, err
			}
		}
	}
	if want.CurrentContext != old.CurrentContext {
		if out, err = setCurrentContext(out, want.CurrentContext); err != nil {
			return nil, err
		}
	}
	// Compare as read back: writing drops empty maps a fresh entry has.
	wantBytes, err := clientcmd.Write(*want)
	if err != nil {
		return nil, err
	}
	wantRT, err := clientcmd.Load(wantBytes)
	if err != nil {
		return nil, err
	}
	got, err := clientcmd.Load(out)
	if err != nil || !sameConfig(got, wantRT) {
		return nil, errNotEditable
	}
	return out, nil
}

// onlyChanged is a config of the entries of want that differ from old.
func onlyChanged(old, want *clientcmdapi.Config) *clientcmdapi.Config {
	c := clientcmdapi.NewConfig()
	for k, v := range want.Clusters {
		if !reflect.DeepEqual(strip(old.Clusters[k]), strip(v)) {
			c.Clusters[k] = v
		}
	}
	for k, v := range want.AuthInfos {
		if !reflect.DeepEqual(strip(old.AuthInfos[k]), strip(v)) {
			c.AuthInfos[k] = v
		}
	}
	for k, v := range want.Contexts {
		if !reflect.DeepEqual(strip(old.Contexts[k]), strip(v)) {
			c.Contexts[k] = v
		}
	}
	return c
}

// strip clears LocationOfOrigin, which loading sets and writing drops.
func strip[T any](v *T) *T {
	if v == nil {
		return nil
	}
	c := *v
	f := reflect.ValueOf(&c).Elem().FieldByName("LocationOfOrigin")
	if f.IsValid() {
		f.SetString("")
	}
	return &c
}

func sameConfig(a, b *clientcmdapi.Config) bool {
	if a.CurrentContext != b.CurrentContext || len(a.Clusters) != len(b.Clusters) || len(a.AuthInfos) != len(b.AuthInfos) || len(a.Contexts) != len(b.Contexts) {
		return false
	}
	for k, v := range a.Clusters {
		if !reflect.DeepEqual(strip(v), strip(b.Clusters[k])) {
			return false
		}
	}
	for k, v := range a.AuthInfos {
		if !reflect.DeepEqual(strip(v), strip(b.AuthInfos[k])) {
			return false
		}
	}
	for k, v := range a.Contexts {
		if !reflect.DeepEqual(strip(v), strip(b.Contexts[k])) {
			return false
		}
	}
	return true
}

// stalePluginCommand reports a user that runs this plugin's get-token through
// a path that is gone (a krew upgrade deletes the old version's directory),
// or through another spelling of the running binary (the resolved,
// version-bound path an older release wrote).
func stalePluginCommand(u *clientcmdapi.AuthInfo, command string) bool {
	if u == nil || u.Exec == nil || len(u.Exec.Args) == 0 || u.Exec.Args[0] != "get-token" || u.Exec.Command == command {
		return false
	}
	base := strings.TrimSuffix(filepath.Base(u.Exec.Command), ".exe")
	if base != PluginName || !filepath.IsAbs(u.Exec.Command) {
		return false
	}
	fi, err := os.Stat(u.Exec.Command)
	if err != nil {
		return true
	}
	self, err := os.Executable()
	if err != nil {
		return false
	}
	sfi, err := os.Stat(self)
	return err == nil && os.SameFile(fi, sfi)
}

// PluginCommand is how a kubeconfig should run this plugin so that it keeps
// working after an upgrade: the unresolved path it was started through (a
// krew install runs ~/.krew/bin/kubectl-gitlab_agent, a symlink into a
// per-version directory that the next upgrade deletes), else its bare name
// when that is on PATH, else the resolved path of the running binary.
func PluginCommand(argv0 string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the plugin's own path: %w", err)
	}
	sfi, err := os.Stat(self)
	if err != nil {
		return "", fmt.Errorf("finding the plugin's own path: %w", err)
	}
	same := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && os.SameFile(fi, sfi)
	}
	started := argv0
	if started != "" && !strings.ContainsRune(started, filepath.Separator) && !(runtime.GOOS == "windows" && strings.ContainsRune(started, '/')) {
		started, _ = exec.LookPath(started)
	}
	if started != "" {
		if abs, err := filepath.Abs(started); err == nil && same(abs) {
			return abs, nil
		}
	}
	if onPath, err := exec.LookPath(PluginName); err == nil && same(onPath) {
		return PluginName, nil
	}
	return self, nil
}
