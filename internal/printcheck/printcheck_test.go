package printcheck

import (
	"errors"
	"fmt"
	"go/parser"
	gotoken "go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// importPath is the import path of this package.
const importPath = "github.com/introspect-go/introspect/internal/printcheck"

// TestImportedByTestsOnly fails if a Go file of the repository other than a
// test file imports the package (it would pull go/parser and testing into
// the builds of the library's users). Only packages below the root module's
// path may import an internal package, so reading the repository's files is
// enough; build constraints are not applied, so a file for any platform
// counts.
func TestImportedByTestsOnly(t *testing.T) {
	root := filepath.Join("..", "..")
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(mod), "module github.com/introspect-go/introspect\n") {
		t.Fatalf("%s is not the root module's directory", root)
	}
	self := filepath.Join(root, "internal", "printcheck")
	fset := gotoken.NewFileSet()
	var fromTests int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || filepath.Dir(path) == self {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p != importPath {
				continue
			}
			if strings.HasSuffix(name, "_test.go") {
				fromTests++
			} else {
				t.Errorf("%s imports %s, which is for tests only", path, importPath)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fromTests == 0 {
		t.Fatalf("no test file imports %s: the walk missed the repository's files", importPath)
	}
}

// TestExportedTypeNames lists the package's own exported types.
func TestExportedTypeNames(t *testing.T) {
	if got, want := exportedTypeNames(t, "."), []string{"Entry", "Leak"}; !slices.Equal(got, want) {
		t.Errorf("exported types %v, want %v", got, want)
	}
}

// Leaky prints the secret it holds: as is, and in base64 in JSON.
type Leaky struct {
	Secret string
	Key    []byte
}

// Panicky panics when fmt prints it.
type Panicky struct{}

// Format panics.
func (Panicky) Format(fmt.State, rune) { panic("boom") }

// TestCheckFails runs TestCheckFailing in a child process and requires it to
// fail for each of the reasons its table holds.
func TestCheckFails(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckFailing$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PRINTCHECK_FAILING=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the failing check did not fail (%v):\n%s", err, out)
	}
	for _, want := range []string{
		"as is, %v: the secret shows",
		"in a struct, %x: the secret in hex shows",
		"as is, encoding/json: the secret in base64 shows",
		"printing panicked",
		"the sample is a printcheck.Leaky, not a Panicky",
		"exported type Missing has no entry in the printing table",
		"the entry of Empty has neither samples nor a reason",
		"the printing table has an entry for Gone, which is not an exported type",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the failing check does not say %q:\n%s", want, out)
		}
	}
}

// TestCheckFailing is a check that must fail, run by TestCheckFails.
func TestCheckFailing(t *testing.T) {
	if os.Getenv("PRINTCHECK_FAILING") != "1" {
		t.Skip("run by TestCheckFails")
	}
	entries := map[string]Entry{
		"Leaky":   {Samples: []any{Leaky{Secret: "s3cr3t", Key: []byte("s3cr3t")}}},
		"Panicky": {Samples: []any{Panicky{}, Leaky{}}},
		"Empty":   {},
		"Gone":    {Reason: "no such type"},
	}
	checkTable(t, []string{"Empty", "Leaky", "Missing", "Panicky"}, entries, StringForms("secret", "s3cr3t"))
}
