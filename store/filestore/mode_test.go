//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package filestore_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ginsession/ginsession/store/filestore"
)

func modeOf(t *testing.T, name string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// TestFileMode checks the modes of the files and the directory a Store
// creates, under two umasks: the mode is exact, the umask does not narrow
// it. It changes the process's umask, so it must not run in parallel.
func TestFileMode(t *testing.T) {
	for _, umask := range []int{0o022, 0o077} {
		for _, tt := range []struct {
			opts     []filestore.Option
			wantFile fs.FileMode
			wantDir  fs.FileMode
		}{
			{nil, 0o600, 0o700},
			{[]filestore.Option{filestore.WithFileMode(0o600)}, 0o600, 0o700},
			{[]filestore.Option{filestore.WithFileMode(0o640)}, 0o640, 0o750},
			{[]filestore.Option{filestore.WithFileMode(0o660)}, 0o660, 0o770},
			{[]filestore.Option{filestore.WithFileMode(0o644)}, 0o644, 0o755},
			{[]filestore.Option{filestore.WithFileMode(0o604)}, 0o604, 0o705},
		} {
			old := syscall.Umask(umask)
			dir := filepath.Join(t.TempDir(), "sessions")
			s, err := filestore.New(dir, tt.opts...)
			if err != nil {
				syscall.Umask(old)
				t.Fatal(err)
			}
			ctx := context.Background()
			_, err = s.Save(ctx, "k", []byte("x"), 0, time.Hour)
			if err == nil {
				_, _, err = s.Load(ctx, "k", time.Hour) // a renewal keeps the mode
			}
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			if got := modeOf(t, dir); got != tt.wantDir {
				t.Errorf("umask %#o, file mode %v: directory mode %v; want %v", umask, tt.wantFile, got, tt.wantDir)
			}
			if got := modeOf(t, path(dir, "k")); got != tt.wantFile {
				t.Errorf("umask %#o: session file mode %v; want %v", umask, got, tt.wantFile)
			}
			if got := modeOf(t, filepath.Join(dir, ".lock-00")); got != tt.wantFile {
				t.Errorf("umask %#o: lock file mode %v; want %v", umask, got, tt.wantFile)
			}
		}
	}
}

// TestFileModeExistingDirectory checks that New leaves the mode of an
// existing directory alone, and that a Save gives a file the Store's mode.
func TestFileModeExistingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	private := newStore(t, dir)
	v, err := private.Save(ctx, "k", []byte("x"), 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := modeOf(t, dir); got != 0o711 {
		t.Errorf("directory mode %v after New; want it left at 0711", got)
	}
	if got := modeOf(t, path(dir, "k")); got != 0o600 {
		t.Fatalf("session file mode %v; want 0600", got)
	}
	shared := newStoreWith(t, dir, filestore.WithFileMode(0o660))
	if _, _, err := shared.Load(ctx, "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := modeOf(t, path(dir, "k")); got != 0o600 {
		t.Errorf("session file mode %v after a renewal; want 0600 until the next Save", got)
	}
	if _, err := shared.Save(ctx, "k", []byte("y"), v, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := modeOf(t, path(dir, "k")); got != 0o660 {
		t.Errorf("session file mode %v after a Save by a Store with 0660; want 0660", got)
	}
}

func TestFileModeRejected(t *testing.T) {
	for _, mode := range []fs.FileMode{0, 0o400, 0o200, 0o044, 0o1600, fs.ModeDir | 0o700, fs.ModeSetuid | 0o600} {
		dir := filepath.Join(t.TempDir(), "sessions")
		s, err := filestore.New(dir, filestore.WithFileMode(mode))
		if err == nil || s != nil {
			t.Errorf("New with file mode %v = %v, %v; want an error", mode, s, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "filestore: file mode ") {
			t.Errorf("New with file mode %v: error %q does not name the mode", mode, err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("New with file mode %v created the directory", mode)
		}
	}
}
