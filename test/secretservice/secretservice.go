// Package secretservice starts a Secret Service of a test's own: a private
// D-Bus session bus (dbus-run-session) with gnome-keyring's secrets
// component, its login keyring made and unlocked in a scratch home, so that
// the OS keyring path runs against the real thing and never the user's.
package secretservice

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// Programs are what a Secret Service here needs (Debian: dbus-daemon, which
// dbus brings, and gnome-keyring).
var Programs = []string{"dbus-run-session", "gnome-keyring-daemon"}

// Missing names the programs of Programs that are not on PATH, for a
// test's skip message; "" when all are there.
func Missing() string {
	var missing []string
	for _, p := range Programs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return strings.Join(missing, " and ") + " not on PATH (Debian: apt-get install dbus gnome-keyring; .ci/run installs them)"
}

// Service is a running Secret Service.
type Service struct {
	// Address is its session bus, for DBUS_SESSION_BUS_ADDRESS.
	Address string

	home  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   *lockedBuffer
	done  chan error
	once  sync.Once
}

// Env is the environment entry that points a process at it.
func (s *Service) Env() string { return "DBUS_SESSION_BUS_ADDRESS=" + s.Address }

// script runs inside dbus-run-session: gnome-keyring-daemon makes the
// login keyring with the password on its stdin and unlocks it, the bus
// address goes to stdout, and the session lasts until stdin closes (Stop,
// or the test process ending: the kernel closes the pipe either way); then
// the scratch home goes, and dbus-run-session ends the bus, and
// gnome-keyring-daemon with it.
const script = `printf %s "$1" | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 1
echo "$DBUS_SESSION_BUS_ADDRESS"
cat >/dev/null
case "$2" in */kga-secrets-*) rm -rf "$2" ;; esac`

// Start starts one, in a scratch home of its own, and waits (at most a
// minute) until it answers on its bus.
func Start() (*Service, error) {
	if m := Missing(); m != "" {
		return nil, errors.New(m)
	}
	home, err := os.MkdirTemp("", "kga-secrets-")
	if err != nil {
		return nil, err
	}
	run := filepath.Join(home, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		os.RemoveAll(home)
		return nil, err
	}
	s := &Service{home: home, log: &lockedBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command("dbus-run-session", "--", "sh", "-c", script, "sh", "a test keyring's password", home)
	s.cmd.Env = append(withoutBus(os.Environ()), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_RUNTIME_DIR="+run)
	s.cmd.Stderr = s.log
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		os.RemoveAll(home)
		return nil, err
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(home)
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(home)
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	select {
	case s.Address = <-lines:
	case <-deadline.C:
	}
	if s.Address == "" {
		s.Stop()
		return nil, fmt.Errorf("the Secret Service did not start: %s", s.log.String())
	}
	if err := s.await(deadline.C); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// await waits until org.freedesktop.secrets has an owner on the bus.
func (s *Service) await(deadline <-chan time.Time) error {
	conn, err := dbus.Connect(s.Address)
	if err != nil {
		return fmt.Errorf("connecting to the test session bus: %w", err)
	}
	defer conn.Close()
	for {
		var owned bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.secrets").Store(&owned)
		if err == nil && owned {
			return nil
		}
		select {
		case <-deadline:
			return fmt.Errorf("no Secret Service on the test bus (%v): %s", err, s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends the session: the bus, then gnome-keyring-daemon, and removes
// the scratch home.
func (s *Service) Stop() {
	s.once.Do(func() {
		s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		os.RemoveAll(s.home)
	})
}

// withoutBus is env without the caller's session bus.
func withoutBus(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "DBUS_SESSION_BUS_ADDRESS=") {
			out = append(out, e)
		}
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
