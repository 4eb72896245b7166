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

// The docs stand alone: every Markdown document (a capitalised name such as
// README.md) that a comment, godoc or README line names exists in the
// module, no line points at a section of a
// document (an all-capitals name followed by §) other than an RFC, and no
// relative path of a Markdown link or a Go comment leads out of the
// repository. Users have only the module.
func TestDocsCiteNoOutsideFiles(t *testing.T) {
	// Documents are named in capitals (README.md); generated reports such
	// as results/latest.md are not documents a reader is sent to.
	mdName := regexp.MustCompile(`\b([A-Z][A-Z0-9_-]*\.md)\b`)
	section := regexp.MustCompile(`\b([A-Z]{2,}) ?§`)
	mdLink := regexp.MustCompile(`\]\(((?:\.\./)+[^)\s]*)\)`)
	commentPath := regexp.MustCompile(`(?:^|\s)((?:\.\./)+\S*)`)
	present := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		present[d.Name()] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
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
			for _, m := range mdName.FindAllStringSubmatch(line, -1) {
				if !present[m[1]] {
					t.Errorf("%s:%d names %s, which the module does not have: %s", path, n+1, m[1], strings.TrimSpace(line))
				}
			}
			for _, m := range section.FindAllStringSubmatch(line, -1) {
				if m[1] != "RFC" {
					t.Errorf("%s:%d points at a section of %s, a document the module does not have: %s", path, n+1, m[1], strings.TrimSpace(line))
				}
			}
			paths := mdLink
			if strings.HasSuffix(path, ".go") {
				if !strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				paths = commentPath
			}
			for _, m := range paths.FindAllStringSubmatch(line, -1) {
				if rel := filepath.Join(filepath.Dir(path), m[1]); rel == ".." || strings.HasPrefix(rel, "../") {
					t.Errorf("%s:%d has a path out of the repository: %s", path, n+1, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
