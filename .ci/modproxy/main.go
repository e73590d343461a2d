// Command modproxy publishes Go modules at one version into a directory
// laid out as a module proxy, for GOPROXY=file://DIR:
//
//	go run . -version v0.999.0 -o DIR MODULE_DIR...
//
// For each module it writes DIR/<module path>/@v/VERSION.info,
// VERSION.mod and VERSION.zip and adds VERSION to DIR/<module path>/@v/list
// (module paths escaped as the go command escapes them). It is how
// .ci/release-check.bash checks, before anything is tagged, that every
// module can be fetched with go get and built outside this repository.
//
// The zips are made by golang.org/x/mod/zip, the code the go command uses:
// they hold the files that a tag would (those git tracks, plus untracked
// ones that it does not ignore, so that a new file counts before it is
// committed; every file, outside a git work tree), less the directories of
// nested modules, vendored packages and irregular files.
//
// A published go.mod is the module's own, with one change: a requirement
// on another module in the same run is set to -version, as a release does
// when it moves a submodule's requirement on the root module to the root's
// new tag (see RELEASING.md). modproxy refuses a go.mod with a replace
// directive, which a consumer of the module would ignore, and one that
// requires a module in the run at anything but a release version
// (vX.Y.Z with X.Y.Z not 0.0.0), which could never be fetched.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
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
	"golang.org/x/mod/zip"
)

func main() {
	version := flag.String("version", "", "the version to publish every module at (required)")
	out := flag.String("o", "", "the proxy directory to write (required)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: modproxy -version vX.Y.Z -o DIR MODULE_DIR...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version == "" || *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*version, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

// A mod is one module to publish.
type mod struct {
	dir  string // absolute
	file *modfile.File
}

func run(version, out string, dirs []string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return fmt.Errorf("-version %q is not a canonical semantic version such as v1.2.3", version)
	}
	var mods []mod
	paths := make(map[string]bool)
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(filepath.Join(abs, "go.mod"))
		if err != nil {
			return err
		}
		f, err := modfile.Parse(filepath.Join(abs, "go.mod"), data, nil)
		if err != nil {
			return err
		}
		if f.Module == nil {
			return fmt.Errorf("%s/go.mod has no module line", abs)
		}
		p := f.Module.Mod.Path
		if paths[p] {
			return fmt.Errorf("module %s is named twice", p)
		}
		paths[p] = true
		mods = append(mods, mod{dir: abs, file: f})
	}
	for _, m := range mods {
		if err := publish(m, version, paths, out); err != nil {
			return fmt.Errorf("%s: %w", m.file.Module.Mod.Path, err)
		}
	}
	return nil
}

func publish(m mod, version string, ours map[string]bool, out string) error {
	modPath := m.file.Module.Mod.Path
	goMod, err := publishedGoMod(m.file, version, ours)
	if err != nil {
		return err
	}
	files, err := listFiles(m.dir)
	if err != nil {
		return err
	}
	for i, f := range files {
		if f.Path() == "go.mod" {
			files[i] = dataFile{name: "go.mod", data: goMod}
		}
	}
	checked, err := zip.CheckFiles(files)
	if err != nil {
		return err
	}

	escPath, err := module.EscapePath(modPath)
	if err != nil {
		return err
	}
	escVersion, err := module.EscapeVersion(version)
	if err != nil {
		return err
	}
	vdir := filepath.Join(out, filepath.FromSlash(escPath), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	var zbuf bytes.Buffer
	if err := zip.Create(&zbuf, module.Version{Path: modPath, Version: version}, files); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		escVersion + ".zip":  zbuf.Bytes(),
		escVersion + ".mod":  goMod,
		escVersion + ".info": info,
	} {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := addToList(filepath.Join(vdir, "list"), version); err != nil {
		return err
	}

	fmt.Printf("%s@%s: %d files, %d bytes zipped%s\n", modPath, version,
		len(checked.Valid), zbuf.Len(), leftOut(checked.Omitted))
	return nil
}

// publishedGoMod returns the go.mod to publish: f with every requirement
// on a module in ours set to version.
func publishedGoMod(f *modfile.File, version string, ours map[string]bool) ([]byte, error) {
	if len(f.Replace) > 0 {
		var olds []string
		for _, r := range f.Replace {
			olds = append(olds, r.Old.Path)
		}
		return nil, fmt.Errorf("go.mod replaces %s: a replace directive applies only inside this repository, never for those who go get the module; require a version instead", strings.Join(olds, ", "))
	}
	for _, r := range f.Require {
		p, v := r.Mod.Path, r.Mod.Version
		if !ours[p] {
			continue
		}
		if semver.Prerelease(v) != "" || semver.Build(v) != "" || v == "v0.0.0" || semver.Canonical(v) != v {
			return nil, fmt.Errorf("go.mod requires %s %s, which will never be tagged: require the release of it that will be tagged before this module (see RELEASING.md)", p, v)
		}
		if err := f.AddRequire(p, version); err != nil {
			return nil, err
		}
	}
	f.Cleanup()
	return f.Format()
}

// listFiles lists the files of the module in dir, as zip.Files. In a git
// work tree these are the files that git tracks and those it doesn't
// ignore; elsewhere, every file (but those of a VCS's directory).
func listFiles(dir string) ([]zip.File, error) {
	var names []string
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if b, err := cmd.Output(); err == nil {
		for _, n := range strings.Split(string(b), "\x00") {
			if n != "" {
				names = append(names, n)
			}
		}
	} else if inGitWorkTree(dir) {
		return nil, fmt.Errorf("git ls-files in %s: %v: %s", dir, err, stderr.Bytes())
	} else {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				switch d.Name() {
				case ".git", ".hg", ".svn", ".bzr":
					return filepath.SkipDir
				}
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(names)
	var files []zip.File
	for _, n := range names {
		abs := filepath.Join(dir, filepath.FromSlash(n))
		info, err := os.Lstat(abs)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted from the work tree, not yet from git's index
		}
		if err != nil {
			return nil, err
		}
		files = append(files, diskFile{name: n, abs: abs, info: info})
	}
	return files, nil
}

func inGitWorkTree(dir string) bool {
	cmd := exec.Command("git", "rev-parse", "--is-inside-work-tree")
	cmd.Dir = dir
	b, err := cmd.Output()
	return err == nil && strings.TrimSpace(string(b)) == "true"
}

// leftOut describes the files that the zip leaves out: those of nested
// modules, by the outermost directory holding them, and the others by
// the reason.
func leftOut(omitted []zip.FileError) string {
	if len(omitted) == 0 {
		return ""
	}
	nested := make(map[string]bool)
	nNested := 0
	other := make(map[string]int)
	for _, fe := range omitted {
		if strings.Contains(fe.Err.Error(), "another module") {
			nNested++
			nested[path.Dir(fe.Path)] = true
		} else {
			other[fe.Err.Error()]++
		}
	}
	var parts []string
	if nNested > 0 {
		var tops []string
		for d := range nested {
			top := true
			for p := path.Dir(d); p != "."; p = path.Dir(p) {
				if nested[p] {
					top = false
					break
				}
			}
			if top {
				tops = append(tops, d+"/")
			}
		}
		sort.Strings(tops)
		parts = append(parts, fmt.Sprintf("%d files of nested modules (%s)", nNested, strings.Join(tops, " ")))
	}
	var reasons []string
	for reason, n := range other {
		reasons = append(reasons, fmt.Sprintf("%d files: %s", n, reason))
	}
	sort.Strings(reasons)
	parts = append(parts, reasons...)
	return "; left out: " + strings.Join(parts, ", ")
}

func addToList(list, version string) error {
	data, err := os.ReadFile(list)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	versions := strings.Fields(string(data))
	for _, v := range versions {
		if v == version {
			return nil
		}
	}
	versions = append(versions, version)
	semver.Sort(versions)
	return os.WriteFile(list, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

// diskFile is a zip.File read from disk.
type diskFile struct {
	name string // slash-separated, relative to the module's directory
	abs  string
	info fs.FileInfo
}

func (f diskFile) Path() string                 { return f.name }
func (f diskFile) Lstat() (fs.FileInfo, error)  { return f.info, nil }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.abs) }

// dataFile is a zip.File held in memory: the published go.mod.
type dataFile struct {
	name string
	data []byte
}

func (f dataFile) Path() string                 { return f.name }
func (f dataFile) Lstat() (fs.FileInfo, error)  { return dataInfo{f}, nil }
func (f dataFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type dataInfo struct{ f dataFile }

func (i dataInfo) Name() string       { return path.Base(i.f.name) }
func (i dataInfo) Size() int64        { return int64(len(i.f.data)) }
func (i dataInfo) Mode() fs.FileMode  { return 0o644 }
func (i dataInfo) ModTime() time.Time { return time.Time{} }
func (i dataInfo) IsDir() bool        { return false }
func (i dataInfo) Sys() any           { return nil }
