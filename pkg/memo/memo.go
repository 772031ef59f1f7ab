// Package memo keeps what is costly to find (a schema, a field manager, a
// review's answer) once per key, for callers that may ask at the same time.
package memo

import "sync"

// Map holds one value per key, found by the first Get of that key. The zero
// Map is ready to use; it must not be copied after first use.
type Map[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]*entry[V]
}

type entry[V any] struct {
	once sync.Once
	v    V
	err  error
}

// Get returns the value for k: find's result on the first call, the same
// value and error on every later one. Callers asking for a key that is being
// found wait for that one call; other keys are not held up.
func (m *Map[K, V]) Get(k K, find func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.entries == nil {
		m.entries = map[K]*entry[V]{}
	}
	e := m.entries[k]
	if e == nil {
		e = &entry[V]{}
		m.entries[k] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.v, e.err = find() })
	return e.v, e.err
}
