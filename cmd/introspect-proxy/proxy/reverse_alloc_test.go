//go:build !race

// The race detector makes sync.Pool drop what it is given at random.

package proxy

import "testing"

// TestBufferPoolAllocations checks that a buffer goes back to the pool and
// comes out again without an allocation.
func TestBufferPoolAllocations(t *testing.T) {
	p := newBufferPool()
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); n != 0 {
		t.Errorf("Get and Put: %v allocations, want 0", n)
	}
}
