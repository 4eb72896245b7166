package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDemoPasses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, logs bytes.Buffer
	if err := run(ctx, []string{"-demo", "-addr", "127.0.0.1:0"}, &out, &logs); err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, out.String(), logs.String())
	}
	if !strings.Contains(out.String(), "9 passed, 0 failed") {
		t.Fatalf("unexpected demo output:\n%s", out.String())
	}
	for _, line := range strings.Split(out.String()+logs.String(), "\n") {
		if strings.Contains(line, "Bearer ") {
			t.Errorf("a line may reveal a token: %q", line)
		}
	}
}

func TestServesSampleCommandAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, &out, &logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "grpcurl -plaintext -H 'authorization: Bearer ") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no sample command printed:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if strings.Count(out.String(), "Bearer ") != 1 {
		t.Errorf("the output shows more than the one sample token:\n%s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
