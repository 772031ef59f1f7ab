// Package cmd holds the cobra commands of kubectl-gitlab_agent. Each command
// maps flags onto an Options struct and calls into the pkg/ packages.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
)

// DisplayName is how users call the plugin; kubectl runs the binary
// kubectl-gitlab_agent for it.
const DisplayName = "kubectl gitlab-agent"

// GlobalOptions are the flags every command honours: how output looks.
type GlobalOptions struct {
	NoColor bool
}

// ExitError carries a specific exit code (for example diff's 1 for "differs").
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// DefaultStreams are the process's stdin, stdout and stderr.
func DefaultStreams() genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}

// NewRootCmd builds the command tree; f makes the clients commands use.
func NewRootCmd(f Factory, streams genericiooptions.IOStreams) *cobra.Command {
	g := &GlobalOptions{}
	root := &cobra.Command{
		Use:   "kubectl-gitlab_agent",
		Short: "Install, operate and reach clusters through GitLab's agent for Kubernetes",
		Long: `kubectl gitlab-agent installs and operates GitLab's agent for Kubernetes (agentk):
it renders the agent's manifests, and reaches clusters through GitLab's
Kubernetes Agent Server (KAS).`,
		Example: `  # Register, configure, deploy and connect an agent
  kubectl gitlab-agent install prod-eu --project infra/agents

  # Reach the cluster through GitLab from here on, with plain kubectl
  kubectl gitlab-agent kubeconfig prod-eu --project infra/agents --use-context`,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: DisplayName,
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		// Generated docs must not change with the day they were made.
		DisableAutoGenTag: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.PersistentFlags().BoolVar(&g.NoColor, "no-color", false, "never colour the output (also when NO_COLOR is set)")

	root.AddCommand(
		NewCmdVersion(streams),
		NewCmdRender(f, streams),
		NewCmdDiff(f, g, streams),
		NewCmdInstall(f, g, streams),
		NewCmdBootstrap(f, g, streams),
		NewCmdApps(f, g, streams),
		NewCmdUpgrade(f, g, streams),
		NewCmdUninstall(f, g, streams),
		NewCmdStatus(f, g, streams),
		NewCmdDoctor(f, g, streams),
		NewCmdKubeconfig(f, g, streams),
		NewCmdGetToken(f, streams),
		NewCmdTokenCache(f, g, streams),
		NewCmdProxy(f, g, streams),
		NewCmdAgent(f, g, streams),
		NewCmdToken(f, g, streams),
		NewCmdFleet(f, g, streams),
		NewCmdCompletion(streams),
		NewCmdGenerate(root),
	)
	for _, path := range [][]string{{"render"}, {"diff"}, {"version"}, {"status"}, {"doctor"}, {"agent", "list"}, {"agent", "get"},
		{"agent", "config", "show"}, {"token", "list"}, {"token-cache", "list"}} {
		if c, rest, err := root.Find(path); err == nil && len(rest) == 0 {
			markReadOnly(c)
		}
	}
	registerFlagCompletions(root)
	return root
}

// Main runs the plugin with args and returns the process exit code. It is the
// only place that turns errors into exit codes and prints them.
//
// The first Ctrl-C (or SIGTERM) cancels the command's context: requests and
// reads stop, what was done is undone where it can be, and the error says
// what stays; the exit code is 128 plus the signal's number, as a shell
// gives (130 for Ctrl-C, 143 for SIGTERM, which GitLab CI sends a cancelled
// job and timeout sends). A second signal ends the process at once.
func Main(args []string, streams genericiooptions.IOStreams) int {
	// For performance work: a CPU profile of the whole command.
	if path := os.Getenv("KUBECTL_GITLAB_AGENT_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			defer f.Close() // after the profile is written: defers run last first
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	return Execute(DefaultFactory(), args, streams)
}

// Execute is Main with the clients f makes: tests run commands in-process
// against fakes with it.
func Execute(f Factory, args []string, streams genericiooptions.IOStreams) int {
	ctx, signaled, stop := notifyContext()
	defer stop()

	// client-go logs through klog (discovery retries on an unreachable
	// cluster print a line each); commands say what matters themselves.
	klog.SetLogger(logr.Discard())
	rest.SetDefaultWarningHandler(&warningPrinter{w: streams.ErrOut, seen: map[string]bool{}})

	root := NewRootCmd(f, streams)
	root.SetArgs(args)
	ran, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	}
	// Text from GitLab, KAS, the cluster or files may be in the message:
	// it is printed as one inert line.
	msg := oneLine(err.Error())
	if tunnel.IsCIAccessRefusal(msg) {
		msg += ": " + tunnel.CIAccessHint(os.Getenv("CI_PROJECT_PATH"))
	}
	msg = safetext.Line(msg)
	if sig := signaled(); sig != 0 && errors.Is(err, context.Canceled) {
		msg = strings.TrimSuffix(strings.ReplaceAll(msg, ": context canceled", ""), "context canceled")
		if msg == "" {
			msg = "stopped"
		}
		if ran != nil && ran.Annotations[readOnly] == "true" {
			msg += "; nothing was changed"
		}
		fmt.Fprintf(streams.ErrOut, "error: interrupted: %s\n", msg)
		return 128 + int(sig)
	}
	fmt.Fprintf(streams.ErrOut, "error: %s\n", msg)
	return code
}

// notifyContext is a context that the first SIGINT or SIGTERM cancels;
// signaled says which one came (0: none). After it, the next signal takes
// its default course: the process ends at once.
func notifyContext() (ctx context.Context, signaled func() syscall.Signal, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var got atomic.Int32
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			if n, ok := s.(syscall.Signal); ok {
				got.Store(int32(n))
			}
			signal.Stop(ch)
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() syscall.Signal { return syscall.Signal(got.Load()) }, func() {
		once.Do(func() {
			close(done)
			signal.Stop(ch)
			cancel()
		})
	}
}

// warningPrinter prints the apiserver's warnings (deprecations, admission
// notes) once each, escaped: their text comes from the cluster.
type warningPrinter struct {
	mu   sync.Mutex
	w    io.Writer
	seen map[string]bool
}

func (p *warningPrinter) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[text] {
		return
	}
	p.seen[text] = true
	fmt.Fprintf(p.w, "Warning: %s\n", safetext.Remote(text, 500))
}

// readOnly annotates the commands that change nothing anywhere, so that an
// interrupted one can say so.
const readOnly = "kubectl-gitlab-agent/read-only"

// markReadOnly annotates cmds and their subcommands as changing nothing.
func markReadOnly(cmds ...*cobra.Command) {
	for _, c := range cmds {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[readOnly] = "true"
	}
}

// oneLine folds a multi-line message so that every error is one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// options is the shape of every command, kubectl's: Complete reads the
// arguments, flags, environment and files into what Run needs and builds
// its clients, without a request; Validate checks the result, with no side
// effect; Run does the work and writes the result to the streams.
type options interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runOptions is the RunE of every command: bad input fails before anything
// is asked of GitLab or the cluster.
func runOptions(o options) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// leaf finishes cmd as a command that o runs, taking args.
func leaf(o options, args cobra.PositionalArgs, cmd *cobra.Command) *cobra.Command {
	cmd.Args, cmd.RunE = args, runOptions(o)
	return cmd
}
