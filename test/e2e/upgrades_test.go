package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
)

// TestUpgradesThroughKASAndProxy: logs -f, exec and port-forward (SPDY and
// WebSocket) work through the fake KAS with a kubeconfig from `kubeconfig`,
// and through `proxy`; kwok's fake kubelet answers them behind the apiserver.
func TestUpgradesThroughKASAndProxy(t *testing.T) {
	te := newTunnel(t)
	r := runCmd(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: up, namespace: default}\nspec:\n  containers: [{name: c, image: example.invalid/up:1}]\n", kubectl, "apply", "-f", "-")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	waitPodRunning(t, "default", "up")

	kasConfig := filepath.Join(t.TempDir(), "kas.kubeconfig")
	r = te.run(t, nil, kubectl, "gitlab-agent", "kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", kasConfig, "--ca-file", te.caFile, "--use-context")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	proxyConfig := filepath.Join(t.TempDir(), "proxy.kubeconfig")
	proxy, perr, _ := startPlugin(t, te.env(), true, "proxy", "tun", "--project", "infra/agents", "--port", "0", "--kubeconfig-out", proxyConfig, "--ca-file", te.caFile)
	defer func() {
		_ = proxy.Process.Signal(syscall.SIGINT)
		_ = proxy.Wait()
		te.outputs.add(perr.String())
	}()

	for _, route := range []struct{ name, kubeconfig string }{{"direct", cl.Kubeconfig}, {"kas", kasConfig}, {"proxy", proxyConfig}} {
		for _, ws := range []string{"true", "false"} {
			t.Run(route.name+"/websockets="+ws, func(t *testing.T) {
				extra := []string{"KUBECONFIG=" + route.kubeconfig, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=" + ws, "KUBECTL_PORT_FORWARD_WEBSOCKETS=" + ws}
				r := te.run(t, extra, kubectl, "exec", "up", "-n", "default", "--", "echo", "ok")
				if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
					t.Fatalf("exec: %+v", r)
				}
				portForward(t, te, extra)
			})
		}
		t.Run(route.name+"/logs-f", func(t *testing.T) {
			logsFollow(t, te, []string{"KUBECONFIG=" + route.kubeconfig})
		})
	}
}

func waitPodRunning(t *testing.T, ns, name string) {
	t.Helper()
	cs := clientset(t)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == "Running" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s not running", ns, name)
}

func startWith(t *testing.T, te *tunnelEnv, extra []string, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(kubectl, args...)
	cmd.Env = append(append(append([]string{}, env...), te.env()...), extra...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

// readLineWith reads lines until one contains want, or fails after a while.
func readLineWith(t *testing.T, r *bufio.Reader, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		for {
			l, err := r.ReadString('\n')
			if err != nil || strings.Contains(l, want) {
				got <- l
				return
			}
		}
	}()
	select {
	case l := <-got:
		if !strings.Contains(l, want) {
			t.Fatalf("stream ended before %q", want)
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("no %q within 20s", want)
	}
	return ""
}

var forwardingRE = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

func portForward(t *testing.T, te *tunnelEnv, extra []string) {
	t.Helper()
	_, out := startWith(t, te, extra, "port-forward", "-n", "default", "pod/up", ":8080")
	m := forwardingRE.FindStringSubmatch(readLineWith(t, out, "Forwarding from 127.0.0.1"))
	if m == nil {
		t.Fatal("no forwarding line")
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/", m[1]))
	if err != nil {
		t.Fatalf("through the port-forward: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != cluster.ForwardGreeting {
		t.Fatalf("port-forward answered %q", body)
	}
}

func logsFollow(t *testing.T, te *tunnelEnv, extra []string) {
	t.Helper()
	_, out := startWith(t, te, extra, "logs", "-f", "-n", "default", "up")
	readLineWith(t, out, "hello from kwok")
	marker := fmt.Sprintf("line written at %d", time.Now().UnixNano())
	if err := cl.AppendLog(marker); err != nil {
		t.Fatal(err)
	}
	readLineWith(t, out, marker)
}
