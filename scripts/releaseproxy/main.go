// Command releaseproxy publishes Go modules of a git working tree at one
// version into a directory laid out as a Go module proxy, for use as
// GOPROXY=file://DIR. Each module is published as the go command would serve
// it from a tag of the repository:
//
//   - its files are those a commit of the working tree would hold (tracked
//     files, and untracked ones git does not ignore), less those marked
//     export-ignore in .gitattributes, which git archive leaves out;
//   - files of nested modules, vendor directories and irregular files are left
//     out, as golang.org/x/mod/zip does;
//   - a module in a subdirectory without a LICENSE of its own gets the
//     repository's LICENSE, as the go command adds it;
//   - its go.mod requires every other published module at the published
//     version and has no replace directive (consumers never apply them).
//
// Usage:
//
//	releaseproxy -repo DIR -version vX.Y.Z -out PROXYDIR MODDIR...
//
// MODDIR are the module directories relative to -repo; the first module in
// the repository's root directory sets the expected module paths of the
// others (its path plus their directory, as tags DIR/vX.Y.Z require).
//
// For each module it writes, under PROXYDIR/<escaped module path>/@v/,
// <version>.info, <version>.mod and <version>.zip, and adds the version to
// list.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

func main() {
	repo := flag.String("repo", ".", "the repository's root directory")
	version := flag.String("version", "", "the version to publish every module at, such as v1.2.3")
	out := flag.String("out", "", "the proxy directory to write")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: releaseproxy -repo DIR -version vX.Y.Z -out PROXYDIR MODDIR...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version == "" || *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*repo, *version, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "releaseproxy:", err)
		os.Exit(1)
	}
}

// A mod is one module to publish.
type mod struct {
	dir   string // relative to the repository, slash-separated; "." for the root
	path  string // module path
	gomod []byte // go.mod as published
	goVer string // its go line
	notes []string
}

func run(repo, version, out string, dirs []string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version || semver.Build(version) != "" {
		return fmt.Errorf("version %q is not a canonical semantic version such as v1.2.3 or v1.2.3-rc.1", version)
	}
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}

	mods := make([]*mod, 0, len(dirs))
	published := make(map[string]bool)
	for _, d := range dirs {
		d = path.Clean(filepath.ToSlash(d))
		data, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(d), "go.mod"))
		if err != nil {
			return fmt.Errorf("%s is not a module: %w", d, err)
		}
		p := modfile.ModulePath(data)
		if p == "" {
			return fmt.Errorf("%s/go.mod has no module directive", d)
		}
		if err := module.Check(p, version); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		f, err := modfile.ParseLax(d+"/go.mod", data, nil)
		if err != nil {
			return err
		}
		goVer := "(none)"
		if f.Go != nil {
			goVer = f.Go.Version
		}
		mods = append(mods, &mod{dir: d, path: p, gomod: data, goVer: goVer})
		published[p] = true
	}
	if err := checkPaths(mods); err != nil {
		return err
	}
	for _, m := range mods {
		gomod, notes, err := rewriteGoMod(m.dir+"/go.mod", m.gomod, version, published)
		if err != nil {
			return err
		}
		m.gomod, m.notes = gomod, notes
	}

	files, err := gitFiles(repo)
	if err != nil {
		return err
	}
	license := ""
	if fi, err := os.Lstat(filepath.Join(repo, "LICENSE")); err == nil && fi.Mode().IsRegular() && files["LICENSE"] {
		license = filepath.Join(repo, "LICENSE")
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	for _, m := range mods {
		if err := publish(repo, out, version, m, files, license, info); err != nil {
			return fmt.Errorf("%s: %w", m.path, err)
		}
	}
	return nil
}

// checkPaths checks that each module in a subdirectory has the root module's
// path plus that directory: a tag "DIR/vX.Y.Z" serves no other path.
func checkPaths(mods []*mod) error {
	root := ""
	for _, m := range mods {
		if m.dir == "." {
			root = m.path
		}
	}
	if root == "" {
		return nil
	}
	for _, m := range mods {
		if m.dir == "." {
			continue
		}
		if want := root + "/" + m.dir; m.path != want {
			return fmt.Errorf("%s/go.mod declares module %s, but a tag %s/vX.Y.Z of this repository serves %s", m.dir, m.path, m.dir, want)
		}
	}
	return nil
}

// rewriteGoMod returns go.mod as it is published: every requirement on a
// published module at version, and no replace directive. It returns data
// itself when nothing changes, and one note per change.
func rewriteGoMod(name string, data []byte, version string, published map[string]bool) ([]byte, []string, error) {
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	for _, r := range f.Require {
		if published[r.Mod.Path] && r.Mod.Version != version {
			notes = append(notes, fmt.Sprintf("require %s %s -> %s", r.Mod.Path, r.Mod.Version, version))
			if err := f.AddRequire(r.Mod.Path, version); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, r := range append([]*modfile.Replace(nil), f.Replace...) {
		old := r.Old.String()
		if r.Old.Version == "" {
			old = r.Old.Path
		}
		notes = append(notes, fmt.Sprintf("dropped replace %s => %s", old, r.New.String()))
		if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
			return nil, nil, err
		}
	}
	if len(notes) == 0 {
		return data, nil, nil
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return nil, nil, err
	}
	return out, notes, nil
}

// gitFiles returns the files a commit of the working tree would hold: tracked
// files still present and untracked files that are not ignored, less those
// marked export-ignore. Paths are slash-separated, relative to repo.
func gitFiles(repo string) (map[string]bool, error) {
	listed, err := gitOutput(repo, nil, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return nil, err
	}
	var paths []string
	seen := make(map[string]bool)
	for _, p := range strings.Split(string(listed), "\x00") {
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		if _, err := os.Lstat(filepath.Join(repo, filepath.FromSlash(p))); errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		paths = append(paths, p)
	}
	attrs, err := gitOutput(repo, []byte(strings.Join(paths, "\x00")), "check-attr", "-z", "--stdin", "export-ignore")
	if err != nil {
		return nil, err
	}
	ignored := make(map[string]bool)
	fields := strings.Split(string(attrs), "\x00")
	for i := 0; i+2 < len(fields); i += 3 {
		if fields[i+2] == "set" {
			ignored[fields[i]] = true
		}
	}
	files := make(map[string]bool, len(paths))
	for _, p := range paths {
		if !ignored[p] {
			files[p] = true
		}
	}
	return files, nil
}

func gitOutput(repo string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// publish writes m's .info, .mod and .zip under out and adds version to its list.
func publish(repo, out, version string, m *mod, files map[string]bool, license string, info []byte) error {
	var zfiles []modzip.File
	prefix := ""
	if m.dir != "." {
		prefix = m.dir + "/"
	}
	haveLicense := false
	for p := range files {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		rel := strings.TrimPrefix(p, prefix)
		switch rel {
		case "go.mod":
			zfiles = append(zfiles, dataFile{name: rel, data: m.gomod})
			continue
		case "LICENSE":
			haveLicense = true
		}
		zfiles = append(zfiles, diskFile{name: rel, file: filepath.Join(repo, filepath.FromSlash(p))})
	}
	if m.dir != "." && !haveLicense && license != "" {
		zfiles = append(zfiles, diskFile{name: "LICENSE", file: license})
	}
	sort.Slice(zfiles, func(i, j int) bool { return zfiles[i].Path() < zfiles[j].Path() })

	checked, err := modzip.CheckFiles(zfiles)
	if err != nil {
		return err
	}
	mv := module.Version{Path: m.path, Version: version}
	epath, err := module.EscapePath(m.path)
	if err != nil {
		return err
	}
	evers, err := module.EscapeVersion(version)
	if err != nil {
		return err
	}
	dir := filepath.Join(out, filepath.FromSlash(epath), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	zipName := filepath.Join(dir, evers+".zip")
	zf, err := os.Create(zipName)
	if err != nil {
		return err
	}
	if err := modzip.Create(zf, mv, zfiles); err != nil {
		zf.Close()
		return err
	}
	if err := zf.Close(); err != nil {
		return err
	}
	if _, err := modzip.CheckZip(mv, zipName); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, evers+".mod"), m.gomod, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, evers+".info"), append(info, '\n'), 0o644); err != nil {
		return err
	}
	if err := addToList(filepath.Join(dir, "list"), version); err != nil {
		return err
	}

	zi, err := os.Stat(zipName)
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s (%s, go %s): %d files, %.1f KiB zipped\n", m.path, version, m.dir, m.goVer, len(checked.Valid), float64(zi.Size())/1024)
	for _, n := range m.notes {
		fmt.Printf("    go.mod: %s\n", n)
	}
	for _, line := range omissions(checked.Omitted) {
		fmt.Printf("    left out: %s\n", line)
	}
	return nil
}

// omissions summarizes the files left out of a zip: nested modules by their
// outermost directory, anything else file by file.
func omissions(omitted []modzip.FileError) []string {
	mods := make(map[string]bool)
	var other []string
	for _, fe := range omitted {
		if fe.Err.Error() == "file is in another module" {
			if path.Base(fe.Path) == "go.mod" {
				mods[path.Dir(fe.Path)] = true
			}
			continue
		}
		other = append(other, fmt.Sprintf("%s (%v)", fe.Path, fe.Err))
	}
	var dirs []string
	for d := range mods {
		outermost := true
		for p := path.Dir(d); p != "."; p = path.Dir(p) {
			if mods[p] {
				outermost = false
			}
		}
		if outermost {
			dirs = append(dirs, d+"/")
		}
	}
	sort.Strings(dirs)
	var lines []string
	if len(dirs) > 0 {
		lines = append(lines, "nested modules "+strings.Join(dirs, " "))
	}
	return append(lines, other...)
}

// addToList adds version to a proxy's list file, one version a line.
func addToList(name, version string) error {
	var versions []string
	if data, err := os.ReadFile(name); err == nil {
		for _, v := range strings.Fields(string(data)) {
			if v != version {
				versions = append(versions, v)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	versions = append(versions, version)
	semver.Sort(versions)
	return os.WriteFile(name, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

// diskFile is a file of the working tree, under its path in the module.
type diskFile struct{ name, file string }

func (f diskFile) Path() string                 { return f.name }
func (f diskFile) Lstat() (os.FileInfo, error)  { return os.Lstat(f.file) }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.file) }

// dataFile is a file whose published content is in memory (a rewritten go.mod).
type dataFile struct {
	name string
	data []byte
}

func (f dataFile) Path() string                 { return f.name }
func (f dataFile) Lstat() (os.FileInfo, error)  { return dataInfo{f}, nil }
func (f dataFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type dataInfo struct{ f dataFile }

func (i dataInfo) Name() string       { return path.Base(i.f.name) }
func (i dataInfo) Size() int64        { return int64(len(i.f.data)) }
func (i dataInfo) Mode() os.FileMode  { return 0o644 }
func (i dataInfo) ModTime() time.Time { return time.Time{} }
func (i dataInfo) IsDir() bool        { return false }
func (i dataInfo) Sys() any           { return nil }
