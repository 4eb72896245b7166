package proxy

import "testing"

// TestRemoveDotSegments checks remove_dot_segments against the examples of
// RFC 3986 §5.2.4 and §5.4, and empty segments, which it keeps.
func TestRemoveDotSegments(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b/c/./../../g":   "/a/g",  // §5.2.4
		"mid/content=5/../6": "mid/6", // §5.2.4
		"/b/c/./g":           "/b/c/g",
		"/b/c/g/.":           "/b/c/g/",
		"/b/c/..":            "/b/",
		"/b/c/../..":         "/",
		"/b/c/../../..":      "/",
		"/b/c/g.":            "/b/c/g.",
		"/b/c/..g":           "/b/c/..g",
		"/a//../b":           "/a/b",
		"/a///..//b":         "/a///b",
		"//../b":             "/b",
		"/":                  "/",
		"":                   "",
		"/..;/b":             "/..;/b",
	} {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}
