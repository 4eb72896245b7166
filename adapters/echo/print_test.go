package introspectecho_test

import (
	"testing"

	"github.com/labstack/echo/v4"

	introspectecho "github.com/introspect-go/introspect/adapters/echo"
	"github.com/introspect-go/introspect/internal/printcheck"
)

// TestPrintExportedTypes requires an entry for every exported type of the
// package, with samples to print or the reason it holds nothing to hide (a
// new exported type fails the test until it has one), and prints the
// samples with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, failing if printing panics.
func TestPrintExportedTypes(t *testing.T) {
	entries := map[string]printcheck.Entry{
		"Config": {Samples: []any{introspectecho.Config{Skipper: func(echo.Context) bool { return false }}, introspectecho.Config{}},
			Reason: "a skipper function only; the middleware is not part of it"},
	}
	printcheck.Check(t, ".", entries, nil)
}
