// Package input reads what users feed the plugin (stdin, values files,
// manifests, token files) with a size cap and an end on Ctrl-C: a read
// blocked on a pipe or a terminal stops when the context ends.
package input

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// The caps. A token is under 1 KiB; the chart's values are a few KiB; a
// manifest set of thousands of objects, CRDs included, is tens of MiB.
const (
	MaxToken     = 64 << 10
	MaxValues    = 8 << 20
	MaxManifests = 256 << 20
	// MaxCA bounds a PEM bundle of CA certificates (the system's whole
	// bundle is a few hundred KiB).
	MaxCA = 1 << 20
	// MaxKubeconfig bounds a kubeconfig: a thousand clusters with their CA
	// certificates embedded are a few MiB.
	MaxKubeconfig = 16 << 20
)

// TooLargeError is an input over its cap.
type TooLargeError struct {
	What  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %s, the most this command reads", e.What, size(e.Limit))
}

func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// ReadAll reads r to its end, at most limit bytes, and gives up when ctx
// ends (the blocked read is left behind; the command is ending). what names
// the input in errors, e.g. "stdin" or "values file values.yaml".
func ReadAll(ctx context.Context, r io.Reader, limit int64, what string) ([]byte, error) {
	return within(ctx, limit, what, func() (io.Reader, func(), error) { return r, func() {}, nil })
}

// ReadFile is ReadAll of the file at path ("-" reads stdin). The open is
// given up on too: opening a FIFO waits for a writer.
func ReadFile(ctx context.Context, path string, stdin io.Reader, limit int64, what string) ([]byte, error) {
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("no stdin to read")
		}
		return ReadAll(ctx, stdin, limit, what+" from stdin")
	}
	return within(ctx, limit, what+" "+path, func() (io.Reader, func(), error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", what, err) // the error names the path
		}
		return f, func() { f.Close() }, nil
	})
}

// NotRegularError is a path that names a pipe, a device, a directory or a
// socket where only a regular file may be read.
type NotRegularError struct {
	What, Path string
	Mode       os.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s %s is %s, not a regular file", e.What, e.Path, kind(e.Mode))
}

// ReadRegularFile is ReadFile for inputs that are only ever files (a
// kubeconfig): a FIFO, a device (/dev/zero), a directory or a socket is
// refused before a byte is read, and opening never waits for a FIFO's
// writer. A missing file is an error that matches os.ErrNotExist.
func ReadRegularFile(ctx context.Context, path string, limit int64, what string) ([]byte, error) {
	return within(ctx, limit, what+" "+path, func() (io.Reader, func(), error) {
		f, err := openNoWait(path)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", what, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("reading %s: %w", what, err)
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, nil, &NotRegularError{What: what, Path: path, Mode: fi.Mode()}
		}
		return f, func() { f.Close() }, nil
	})
}

// kind names what a file that is not regular is.
func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// within opens a reader and reads it to its end, at most limit bytes, in a
// goroutine left behind when ctx ends first.
func within(ctx context.Context, limit int64, what string, open func() (io.Reader, func(), error)) ([]byte, error) {
	type result struct {
		b      []byte
		err    error
		opened bool
	}
	done := make(chan result, 1)
	go func() {
		r, closeIt, err := open()
		if err != nil {
			done <- result{nil, err, false}
			return
		}
		defer closeIt()
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		done <- result{b, err, true}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("reading %s: %w", what, ctx.Err())
	case res := <-done:
		if res.err != nil && !res.opened {
			return nil, res.err
		}
		if res.err != nil {
			return nil, fmt.Errorf("reading %s: %w", what, res.err)
		}
		if int64(len(res.b)) > limit {
			return nil, &TooLargeError{What: what, Limit: limit}
		}
		return res.b, nil
	}
}
