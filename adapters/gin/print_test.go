package introspectgin_test

import (
	"testing"

	"github.com/gin-gonic/gin"

	introspectgin "github.com/introspect-go/introspect/adapters/gin"
	"github.com/introspect-go/introspect/internal/printcheck"
)

// TestPrintExportedTypes requires an entry for every exported type of the
// package, with samples to print or the reason it holds nothing to hide (a
// new exported type fails the test until it has one), and prints the
// samples with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, failing if printing panics.
func TestPrintExportedTypes(t *testing.T) {
	entries := map[string]printcheck.Entry{
		"Config": {Samples: []any{introspectgin.Config{Skipper: func(*gin.Context) bool { return false }}, introspectgin.Config{}},
			Reason: "a skipper function only; the middleware is not part of it"},
	}
	printcheck.Check(t, ".", entries, nil)
}
