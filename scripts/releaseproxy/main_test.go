package main

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestRewriteGoMod(t *testing.T) {
	in := `module example.com/lib/adapter

go 1.24.0

require (
	example.com/lib v0.1.0
	example.com/other v1.2.3
)

replace example.com/lib => ../..

replace example.com/other v1.2.3 => example.com/fork v1.2.4
`
	published := map[string]bool{"example.com/lib": true, "example.com/lib/adapter": true}
	out, notes, err := rewriteGoMod("go.mod", []byte(in), "v1.0.0", published)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range f.Require {
		got[r.Mod.Path] = r.Mod.Version
	}
	if got["example.com/lib"] != "v1.0.0" || got["example.com/other"] != "v1.2.3" {
		t.Errorf("requirements %v, want example.com/lib at v1.0.0 and example.com/other untouched", got)
	}
	if len(f.Replace) != 0 || strings.Contains(string(out), "replace") {
		t.Errorf("replace directives left:\n%s", out)
	}
	if len(notes) != 3 {
		t.Errorf("notes %q, want 3", notes)
	}

	same := "module example.com/lib\n\ngo 1.24.0\n\nrequire example.com/other v1.2.3 // a comment kept\n"
	out, notes, err = rewriteGoMod("go.mod", []byte(same), "v1.0.0", published)
	if err != nil || string(out) != same || notes != nil {
		t.Errorf("unchanged go.mod: got %q, %q, %v", out, notes, err)
	}
}

func TestCheckPaths(t *testing.T) {
	ok := []*mod{{dir: ".", path: "example.com/lib"}, {dir: "cache/redis", path: "example.com/lib/cache/redis"}}
	if err := checkPaths(ok); err != nil {
		t.Error(err)
	}
	bad := []*mod{{dir: ".", path: "example.com/lib"}, {dir: "cache/redis", path: "example.com/lib/redis"}}
	if err := checkPaths(bad); err == nil {
		t.Error("a module path that is not the root's plus its directory was accepted")
	}
}

// TestRun publishes a small repository and checks the proxy's layout and what
// each zip holds.
func TestRun(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/lib\n\ngo 1.24.0\n")
	write("lib.go", "package lib\n")
	write("LICENSE", "license text\n")
	write(".gitignore", "*.log\n")
	write(".gitattributes", "secret.txt export-ignore\n")
	write("secret.txt", "not published\n")
	write("debug.log", "ignored by git\n")
	write("internal/x/x.go", "package x\n")
	write("adapter/go.mod", "module example.com/lib/adapter\n\ngo 1.24.0\n\nrequire example.com/lib v0.1.0\n\nreplace example.com/lib => ../\n")
	write("adapter/adapter.go", "package adapter\n")
	write("examples/demo/go.mod", "module example.com/lib/examples/demo\n\ngo 1.24.0\n")
	write("examples/demo/main.go", "package main\n")
	git := exec.Command("git", "init", "-q")
	git.Dir = repo
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}

	out := t.TempDir()
	if err := run(repo, "v1.2.3-rc.1", out, []string{".", "adapter"}); err != nil {
		t.Fatal(err)
	}

	files := zipFiles(t, filepath.Join(out, "example.com/lib/@v/v1.2.3-rc.1.zip"))
	want := []string{".gitattributes", ".gitignore", "LICENSE", "go.mod", "internal/x/x.go", "lib.go"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("root zip holds %q, want %q", files, want)
	}
	files = zipFiles(t, filepath.Join(out, "example.com/lib/adapter/@v/v1.2.3-rc.1.zip"))
	want = []string{"LICENSE", "adapter.go", "go.mod"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("adapter zip holds %q, want %q", files, want)
	}
	gomod, err := os.ReadFile(filepath.Join(out, "example.com/lib/adapter/@v/v1.2.3-rc.1.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), "require example.com/lib v1.2.3-rc.1") || strings.Contains(string(gomod), "replace") {
		t.Errorf("published adapter go.mod:\n%s", gomod)
	}
	for _, name := range []string{"list", "v1.2.3-rc.1.info"} {
		if _, err := os.Stat(filepath.Join(out, "example.com/lib/adapter/@v", name)); err != nil {
			t.Error(err)
		}
	}

	if err := run(repo, "v1.2.3", out, []string{"."}); err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile(filepath.Join(out, "example.com/lib/@v/list"))
	if err != nil {
		t.Fatal(err)
	}
	if string(list) != "v1.2.3-rc.1\nv1.2.3\n" {
		t.Errorf("list %q", list)
	}

	for _, v := range []string{"1.2.3", "v1.2", "v2.0.0", "v1.0.0+build"} {
		if err := run(repo, v, t.TempDir(), []string{"."}); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
}

func zipFiles(t *testing.T, name string) []string {
	t.Helper()
	r, err := zip.OpenReader(name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	for _, f := range r.File {
		_, vrel, _ := strings.Cut(f.Name, "@") // after module path
		_, rel, _ := strings.Cut(vrel, "/")    // after version
		names = append(names, rel)
	}
	sort.Strings(names)
	return names
}
