package proxy

import "testing"

// TestBufferPool checks the reverse proxy's copy buffers: each of
// copyBufferSize bytes, and one of another size (not from the pool) never
// kept.
func TestBufferPool(t *testing.T) {
	p := newBufferPool()
	b := p.Get()
	if len(b) != copyBufferSize || cap(b) != copyBufferSize {
		t.Fatalf("len %d, cap %d: want %d", len(b), cap(b), copyBufferSize)
	}
	p.Put(b[:10]) // the proxy may give back a slice of it
	p.Put(make([]byte, 10))
	if got := p.Get(); len(got) != copyBufferSize {
		t.Fatalf("len %d after a foreign Put: want %d", len(got), copyBufferSize)
	}
}
