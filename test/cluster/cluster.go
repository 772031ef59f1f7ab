package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// adminToken authenticates the test's admin user (group system:masters). It is
// valid only for this throw-away cluster on loopback.
const adminToken = "kga-test-admin-token" // #nosec G101 -- test-only, loopback cluster

// Options tune Start.
type Options struct {
	// Log receives build progress and start-up messages.
	Log io.Writer
	// Nodes is the number of kwok nodes; 1 when zero.
	Nodes int
}

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds the key material, etcd's data, the kubeconfig and the logs.
	Dir string
	// Kubeconfig is an admin kubeconfig for the cluster (context "test").
	Kubeconfig string
	// Server is the apiserver's URL on loopback.
	Server string
	// PodLog is the file kwok serves as every container's log; append to
	// it to make `kubectl logs -f` print more.
	PodLog string
	// ForwardTarget answers port-forwards to any pod's port 8080.
	ForwardTarget *httptest.Server
	caPEM         []byte
	procs         []*process
	fluxes        []*Flux
	log           io.Writer
}

// ForwardGreeting is what ForwardTarget answers.
const ForwardGreeting = "hello through port-forward"

type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logf *os.File
}

// Start builds (once) and starts a control plane on free loopback ports. Call
// Stop when done.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	bin, err := EnsureBinaries(ctx, opts.Log)
	if err != nil {
		return nil, err
	}
	// Ports are picked free and then handed to the processes, so another
	// process can take one in between: try again with new ports then.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := start(ctx, bin, opts)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, bin string, opts Options) (c *Cluster, err error) {
	dir, err := os.MkdirTemp("", "kga-cluster-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, log: opts.Log}
	defer func() {
		if err != nil {
			c.stop()
			fmt.Fprintf(opts.Log, "test cluster failed to start; logs kept in %s\n", filepath.Join(dir, "logs"))
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return c, err
	}
	p, err := writePKI(dir)
	if err != nil {
		return c, fmt.Errorf("writing test PKI: %w", err)
	}
	c.caPEM = p.caPEM
	ports, err := freePorts(4)
	if err != nil {
		return c, err
	}
	if err := c.writeKwokFeatures(); err != nil {
		return c, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.Server = "https://127.0.0.1:" + strconv.Itoa(ports[2])

	if err := c.run(ctx, "etcd", filepath.Join(bin, Etcd),
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync=true", // a test cluster needs no durability
		"--log-level=warn",
	); err != nil {
		return c, err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", nil); err != nil {
		return c, err
	}

	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return c, err
	}
	if err := c.run(ctx, "kube-apiserver", filepath.Join(bin, KubeAPIServer),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+p.ServingCert, "--tls-private-key-file="+p.ServingKey,
		"--client-ca-file="+p.CACert,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.SAPub,
		"--service-account-signing-key-file="+p.SAKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		// the reconciler refuses a loopback advertise address; tests need no
		// endpoints for the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		// logs, exec and port-forward reach kwok's fake kubelet.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority="+p.CACert,
	); err != nil {
		return c, err
	}
	rc := c.RESTConfig()
	rt, err := rest.TransportFor(rc)
	if err != nil {
		return c, err
	}
	if err := c.waitHTTP(ctx, "kube-apiserver", c.Server+"/readyz", &http.Client{Transport: rt}); err != nil {
		return c, err
	}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := c.writeKubeconfig(c.Kubeconfig); err != nil {
		return c, err
	}
	if err := c.run(ctx, "kube-controller-manager", filepath.Join(bin, KubeControllerMgr),
		"--kubeconfig="+c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file="+p.SAKey,
		"--root-ca-file="+p.CACert,
		"--use-service-account-credentials=false",
		// The defaults (20 requests/s, 5 Deployments at a time) make
		// thousands of Deployments roll out for minutes.
		"--kube-api-qps=300", "--kube-api-burst=600",
		"--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
	); err != nil {
		return c, err
	}
	if err := c.run(ctx, "kube-scheduler", filepath.Join(bin, KubeScheduler),
		"--kubeconfig="+c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--kube-api-qps=300", "--kube-api-burst=600",
	); err != nil {
		return c, err
	}
	if err := c.run(ctx, "kwok", filepath.Join(bin, Kwok),
		"--kubeconfig="+c.Kubeconfig,
		"--config="+filepath.Join(bin, KwokStages),
		"--config="+filepath.Join(dir, "kwok-features.yaml"),
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--server-address=127.0.0.1:"+strconv.Itoa(ports[3]),
		"--node-port="+strconv.Itoa(ports[3]),
		"--tls-cert-file="+p.KwokCert, "--tls-private-key-file="+p.KwokKey,
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.0/16",
		"--node-ip=127.0.0.1",
	); err != nil {
		return c, err
	}
	cs, err := NewClients(rc)
	if err != nil {
		return c, err
	}
	for i := 0; i < opts.Nodes; i++ {
		if err := createNode(ctx, cs, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return c, err
		}
	}
	if err := c.waitReady(ctx, cs, opts.Nodes); err != nil {
		return c, err
	}
	return c, nil
}

func createNode(ctx context.Context, cs *Clients, name string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			"type": "kwok",
		},
	}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating kwok node %s: %w", name, err)
	}
	return nil
}

// waitReady waits until the nodes are Ready and the controllers work (the
// default ServiceAccount exists), so that tests can create workloads at once.
func (c *Cluster) waitReady(ctx context.Context, cs *Clients, nodes int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		if err := c.exited(); err != nil {
			return err
		}
		ready := 0
		if list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
			for _, n := range list.Items {
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
		}
		_, saErr := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if ready >= nodes && saErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("test cluster not ready (%d/%d nodes ready, default ServiceAccount: %v): %w", ready, nodes, saErr, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// RESTConfig returns an admin client configuration for the cluster.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            c.Server,
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS:             100,
		Burst:           200,
	}
}

// CAData is the PEM of the CA that signed the apiserver's serving certificate.
func (c *Cluster) CAData() []byte { return c.caPEM }

func (c *Cluster) writeKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: adminToken}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "test"
	return clientcmd.WriteToFile(*cfg, path)
}

func (c *Cluster) run(ctx context.Context, name, path string, args ...string) error {
	p, err := startProcess(name, filepath.Join(c.Dir, "logs", name+".log"), nil, path, args...)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

// startProcess starts path with args and env added to this process's
// environment, writing its output to logPath. The process dies with this one.
func startProcess(name, logPath string, env []string, path string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), logf: logf}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after ten seconds, and waits for the end.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.logf.Close()
}

// exited returns an error naming the first component that stopped.
func (c *Cluster) exited() error { return exited(c.procs) }

func exited(procs []*process) error {
	for _, p := range procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v); see %s", p.name, p.err, p.logf.Name())
		default:
		}
	}
	return nil
}

func (c *Cluster) waitHTTP(ctx context.Context, name, url string, client *http.Client) error {
	return waitHTTP(ctx, name, url, client, c.exited)
}

// waitHTTP polls url for up to 90 seconds until it answers 200 OK, failing
// at once when exited returns an error.
func waitHTTP(ctx context.Context, name, url string, client *http.Client, exited func() error) error {
	if client == nil {
		client = &http.Client{}
	}
	client.Timeout = 2 * time.Second
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := exited(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy at %s: %w", name, url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeKwokFeatures makes kwok's kubelet serve logs (from PodLog, followed),
// exec (commands run on this machine) and port-forward (to ForwardTarget)
// for every pod, so that these upgrades travel the real path through the
// apiserver.
func (c *Cluster) writeKwokFeatures() error {
	c.PodLog = filepath.Join(c.Dir, "pod.log")
	if err := os.WriteFile(c.PodLog, nil, 0o644); err != nil {
		return err
	}
	if err := c.AppendLog("hello from kwok"); err != nil {
		return err
	}
	c.ForwardTarget = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, ForwardGreeting)
	}))
	target := c.ForwardTarget.Listener.Addr().(*net.TCPAddr)
	features := fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: all-pods
spec:
  logs:
  - logsFile: %q
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: all-pods
spec:
  execs:
  - local:
      workDir: %q
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: all-pods
spec:
  forwards:
  - ports: [8080]
    target:
      address: 127.0.0.1
      port: %d
`, c.PodLog, c.Dir, target.Port)
	return os.WriteFile(filepath.Join(c.Dir, "kwok-features.yaml"), []byte(features), 0o644)
}

// AppendLog adds a line to every container's log, in the CRI log format
// kwok serves.
func (c *Cluster) AppendLog(line string) error {
	f, err := os.OpenFile(c.PodLog, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Stop ends every component and removes the cluster's files.
func (c *Cluster) Stop() {
	c.stop()
	os.RemoveAll(c.Dir)
}

// StopKeepLogs ends every component and keeps the logs, returning where.
func (c *Cluster) StopKeepLogs() string {
	c.stop()
	os.RemoveAll(filepath.Join(c.Dir, "etcd"))
	return filepath.Join(c.Dir, "logs")
}

func (c *Cluster) stop() {
	if c.ForwardTarget != nil {
		c.ForwardTarget.Close()
		c.ForwardTarget = nil
	}
	for _, f := range c.fluxes {
		f.Stop()
	}
	c.fluxes = nil
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop()
	}
	c.procs = nil
}

// freePorts asks the kernel for n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// TLSConfig trusts the cluster's CA, for tests that dial the apiserver.
func (c *Cluster) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
