//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package filestore

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// Waiting for a lock that another process holds: the first retry comes
// after minLockWait, each later one after twice the previous wait, up to
// maxLockWait.
const (
	minLockWait = 50 * time.Microsecond
	maxLockWait = 10 * time.Millisecond
)

// lockFile opens the lock file at path, creating it with mode if needed,
// and takes an exclusive flock(2) on it. Closing the file releases the
// lock. flock locks belong to the open file, so they exclude other
// processes and other opens in this process alike.
//
// The file is opened for reading only, which is all flock needs, so a
// process that may read the directory's files can take the locks.
//
// lockFile polls rather than block in flock, so that ctx can end the wait.
func lockFile(ctx context.Context, path string, mode os.FileMode) (*os.File, error) {
	f, err := openLockFile(path, mode)
	if err != nil {
		return nil, err
	}
	conn, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	wait := minLockWait
	for {
		var lockErr error
		if err := conn.Control(func(fd uintptr) {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		}); err != nil {
			f.Close()
			return nil, err
		}
		switch {
		case lockErr == nil:
			return f, nil
		case errors.Is(lockErr, syscall.EINTR):
			continue
		case !errors.Is(lockErr, syscall.EWOULDBLOCK):
			f.Close()
			return nil, &os.PathError{Op: "flock", Path: path, Err: lockErr}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-timer.C:
		}
		wait = min(2*wait, maxLockWait)
	}
}

// openLockFile opens the lock file at path for reading. If there is none,
// it creates one with exactly mode, whatever the umask.
func openLockFile(path string, mode os.FileMode) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, os.ErrExist) {
			continue // created meanwhile
		}
		if err != nil {
			return nil, err
		}
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
}
