package tunnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// lockWait bounds how long a lock is waited for.
const lockWait = 30 * time.Second

// LockBusyError: another process held the lock for the whole wait.
type LockBusyError struct {
	Path string
	Wait time.Duration
}

func (e *LockBusyError) Error() string {
	return fmt.Sprintf("%s is held by another process after %s of waiting: if none is running, remove it", e.Path, e.Wait)
}

// retryLock calls try until it takes the lock, backing off from 5 ms to
// 200 ms, for at most wait or until ctx ends.
func retryLock(ctx context.Context, path string, wait time.Duration, try func() (bool, error)) error {
	deadline := time.Now().Add(wait)
	delay := 5 * time.Millisecond
	for {
		ok, err := try()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return &LockBusyError{Path: path, Wait: wait}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// createLock takes the lock convention client-go's kubeconfig writers use:
// the file path exists while someone holds the lock. It waits (bounded, with
// backoff) while another process holds it.
func createLock(ctx context.Context, path string, wait time.Duration) (func(), error) {
	err := retryLock(ctx, path, wait, func() (bool, error) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return true, nil
		}
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, err
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = os.Remove(path) }, nil
}
