//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
)

// lockFile fails: this system has no flock(2) in the standard library, and
// a Store that could not exclude other processes would lose updates.
func lockFile(context.Context, string, os.FileMode) (*os.File, error) {
	return nil, fmt.Errorf("flock is not available on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
