package memo

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOncePerKey: concurrent callers of one key share one call and its
// result, errors included; another key is found on its own.
func TestOncePerKey(t *testing.T) {
	var m Map[string, int]
	var calls atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Go(func() {
			got[i], _ = m.Get("a", func() (int, error) {
				calls.Add(1)
				close(started)
				<-release
				return 42, nil
			})
		})
	}
	// Another key does not wait for "a", which is being found.
	<-started
	if v, err := m.Get("b", func() (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatalf(`Get("b") = %d, %v while "a" is being found`, v, err)
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf(`"a" was found %d times, want once`, calls.Load())
	}
	for i, v := range got {
		if v != 42 {
			t.Errorf("caller %d got %d, want 42", i, v)
		}
	}

	boom := errors.New("boom")
	for range 2 {
		if _, err := m.Get("c", func() (int, error) { calls.Add(1); return 0, boom }); !errors.Is(err, boom) {
			t.Errorf(`Get("c") = %v, want the first call's error`, err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("a failed find was repeated: %d calls in all, want 2", calls.Load())
	}
}
