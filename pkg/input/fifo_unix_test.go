//go:build unix

package input

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Opening a FIFO waits for a writer: Ctrl-C must end that wait too.
func TestReadFileGivesUpOnAFIFOWithNoWriter(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := ReadFile(ctx, fifo, nil, MaxToken, "--token-file")
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "--token-file "+fifo) {
		t.Errorf("%v", err)
	}
	// (The open left behind ends when a writer comes.)
	if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
		f.Close()
	}
}

// A kubeconfig is a file: a FIFO with no writer, /dev/zero and a directory
// are refused at once, not waited on or read to the cap.
func TestReadRegularFileRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	// No deadline in the context: a wait would hang the test.
	for path, want := range map[string]string{fifo: "a named pipe", "/dev/zero": "a device", dir: "a directory"} {
		_, err := ReadRegularFile(context.Background(), path, MaxKubeconfig, "kubeconfig")
		var nr *NotRegularError
		if !errors.As(err, &nr) || err.Error() != "kubeconfig "+path+" is "+want+", not a regular file" {
			t.Errorf("%s: %v", path, err)
		}
	}
	file := filepath.Join(dir, "config")
	if err := os.WriteFile(file, []byte("kind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadRegularFile(context.Background(), file, MaxKubeconfig, "kubeconfig"); err != nil || string(b) != "kind: Config\n" {
		t.Errorf("%q %v", b, err)
	}
	if _, err := ReadRegularFile(context.Background(), file, 4, "kubeconfig"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("over the cap: %v", err)
	}
	if _, err := ReadRegularFile(context.Background(), filepath.Join(dir, "missing"), MaxKubeconfig, "kubeconfig"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
