package introspect_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every Go snippet of the README is compiled: each stands, line for line,
// in a file of examples/readme (a program the build compiles) or in an
// Example of the package.
func TestREADMESnippetsCompile(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no Go snippet")
	}
	sources, err := filepath.Glob("examples/readme/*.go")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no examples/readme sources: %v", err)
	}
	// examples/otel is a module of its own (it needs the OpenTelemetry SDK);
	// its build compiles it, this test reads it as text.
	sources = append(sources, "example_test.go", "examples/otel/main.go")
	var all strings.Builder
	for _, f := range sources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	code := all.String()
	for i, b := range blocks {
		snippet := strings.TrimSpace(string(b[1]))
		if !strings.Contains(code, snippet) {
			t.Errorf("Go snippet %d of the README is not compiled: copy it from examples/readme or an Example, as it stands there:\n%s", i+1, snippet)
		}
	}
}

// The docs stand alone: no godoc, comment or README line points to a file
// that users of the module do not have.
func TestDocsCiteNoOutsideFiles(t *testing.T) {
	outside := regexp.MustCompile(`DESIGN(\.md| ?§)|STYLE\.md|shared/seeds|\.\./shared`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for n, line := range strings.Split(string(b), "\n") {
			if outside.MatchString(line) && !strings.Contains(line, "outside := regexp") {
				t.Errorf("%s:%d cites a file outside the module: %s", path, n+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
