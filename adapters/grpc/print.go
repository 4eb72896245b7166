package introspectgrpc

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
)

// The printed forms of Interceptors for fmt (every verb, %#v included),
// log/slog and encoding/json. The middleware prints itself (see
// introspect.Middleware.Format): never a secret, a private key, a token or a
// cache key.

// scopedMethods lists the methods with scope requirements, sorted.
func (i Interceptors) scopedMethods() []string {
	ms := make([]string, 0, len(i.checks))
	for m := range i.checks {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	return ms
}

// Format prints the middleware (as its own Format does), the methods with
// scope requirements and whether a skipper is set, the same for every verb.
func (i Interceptors) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "introspectgrpc.Interceptors{middleware: %v, scoped methods: %q, skipper: %t}",
		i.mw, i.scopedMethods(), i.skip != nil)
}

// LogValue implements [slog.LogValuer] with the attributes Format prints. It
// has a pointer receiver so that a nil *Interceptors logs as "<nil>"; a
// value is logged through Format or MarshalJSON.
func (i *Interceptors) LogValue() slog.Value {
	if i == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.Any("middleware", i.mw), slog.Any("scoped_methods", i.scopedMethods()),
		slog.Bool("skipper", i.skip != nil))
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (i Interceptors) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Middleware    any      `json:"middleware"`
		ScopedMethods []string `json:"scoped_methods"`
		Skipper       bool     `json:"skipper"`
	}{i.mw, i.scopedMethods(), i.skip != nil})
}
