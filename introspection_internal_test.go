package introspect

import (
	"encoding/json"
	"testing"
)

// FuzzUnquote checks the fast path of unquote against encoding/json: the
// same string for every input encoding/json accepts as a string, an error
// for every input it refuses.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"plain"`, `"with \"escape\""`, `"\u00e9"`, `"é"`, "\"\xff\"", `""`, ` "spaced" `, `1`, `"a`, `null`, "\"tab\there\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want string
		wantErr := json.Unmarshal(raw, &want)
		got, err := unquote(raw)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("unquote(%q) error %v, encoding/json %v", raw, err, wantErr)
		}
		if err == nil && got != want {
			t.Fatalf("unquote(%q) = %q, encoding/json %q", raw, got, want)
		}
	})
}
