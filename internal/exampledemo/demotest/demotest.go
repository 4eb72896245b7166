// Package demotest checks the examples under examples/ from their tests: the
// -demo mode passes, and a served example prints its one sample token and
// stops when asked. It is not part of the library's API.
package demotest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect/internal/exampledemo"
)

// Main is an example's run function: its flags, its output and its logs.
type Main func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Demo runs main with args (which hold -demo) and fails t unless it succeeds,
// reports want (such as "7 passed, 0 failed") and prints no token: no line
// mentions a bearer token except a WWW-Authenticate challenge.
func Demo(t *testing.T, main Main, args []string, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, logs bytes.Buffer
	if err := main(ctx, args, &out, &logs); err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, out.String(), logs.String())
	}
	if !strings.Contains(out.String(), want) {
		t.Fatalf("demo output lacks %q:\n%s", want, out.String())
	}
	for _, line := range strings.Split(out.String()+logs.String(), "\n") {
		if strings.Contains(line, "Bearer ") && !strings.Contains(line, "WWW-Authenticate: Bearer") {
			t.Errorf("a line may reveal a token: %q", line)
		}
	}
}

// Serves runs main with args until its output contains sample (the start of
// the sample command), then cancels it. It fails t unless main stops without
// an error, the output shows exactly one bearer token, and the logs none.
func Serves(t *testing.T, main Main, args []string, sample string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, logs exampledemo.Buffer
	done := make(chan error, 1)
	go func() { done <- main(ctx, args, &out, &logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), sample) {
		select {
		case err := <-done:
			t.Fatalf("stopped before printing %q: %v\n%s", sample, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no %q printed:\n%s", sample, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if n := strings.Count(out.String(), "Bearer "); n != 1 {
		t.Errorf("the output shows %d bearer tokens, want the one sample:\n%s", n, out.String())
	}
	if strings.Contains(logs.String(), "Bearer ") {
		t.Errorf("the logs mention a bearer token:\n%s", logs.String())
	}
}
