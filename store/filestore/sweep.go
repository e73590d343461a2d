package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The pace of the cleanup that Save does on the side; see the package
// documentation.
const (
	sweepInterval = time.Minute // from the start of one pass to the next
	batchInterval = time.Second // from one batch of a pass to the next
	sweepBatch    = 1000        // directory entries examined per batch
	staleTemp     = time.Hour   // age at which a temporary file is left over
	tempPrefix    = ".tmp-"     // of the files that Save renames into place
)

// sweeper removes expired session files a batch at a time, on the side of
// Save. Its zero value starts a pass at the first Save.
type sweeper struct {
	batch     int // entries per batch; 0 means sweepBatch
	mu        sync.Mutex
	dir       *os.File  // open while a pass is under way
	passStart time.Time // when the pass under way, or the last one, started
	pass      uint64    // the index's stamp of the pass under way
	complete  bool      // every entry of the pass so far was examined
	next      time.Time // no batch before then
}

// maybeRun runs the next batch of the cleanup if it is due and no other
// goroutine of the Store is running one. Its errors are dropped: the
// cleanup only gives disk space back, expired sessions never load anyway,
// and the next pass tries again.
func (w *sweeper) maybeRun(ctx context.Context, s *Store, now time.Time) {
	if !w.mu.TryLock() {
		return
	}
	defer w.mu.Unlock()
	if now.Before(w.next) {
		return
	}
	if w.dir == nil {
		d, err := os.Open(s.dir)
		if err != nil {
			w.next = now.Add(sweepInterval)
			return
		}
		w.dir, w.passStart = d, now
		w.pass, w.complete = s.index.beginPass(), true
	}
	batch := w.batch
	if batch <= 0 {
		batch = sweepBatch
	}
	entries, err := w.dir.ReadDir(batch)
	for _, e := range entries {
		if _, err := s.removeExpired(ctx, e, now); err != nil {
			w.complete = false
			if ctx.Err() != nil {
				break
			}
		}
	}
	if err != nil || len(entries) < batch {
		// io.EOF, or a directory that can no longer be read: the pass
		// is over. If it met every file, those it did not meet are gone.
		if w.complete && (err == nil || errors.Is(err, io.EOF)) {
			s.index.endPass(w.pass)
		}
		w.dir.Close()
		w.dir = nil
		w.next = w.passStart.Add(sweepInterval)
		return
	}
	w.next = now.Add(batchInterval)
}

// DeleteExpired removes the files of all expired sessions and the
// temporary files that crashed writers left behind over an hour ago, and
// returns how many session files it removed. It reads the whole directory,
// so in a large one it takes a while; Save already does the same work a
// batch at a time, so calling DeleteExpired is optional. It stops at the
// first error, or when ctx ends.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	d, err := os.Open(s.dir)
	if err != nil {
		return 0, fmt.Errorf("filestore: delete expired: %w", err)
	}
	defer d.Close()
	pass := s.index.beginPass()
	removed := 0
	for {
		entries, err := d.ReadDir(sweepBatch)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return removed, fmt.Errorf("filestore: delete expired: %w", err)
			}
			ok, err := s.removeExpired(ctx, e, time.Now())
			if err != nil {
				return removed, fmt.Errorf("filestore: delete expired: %w", err)
			}
			if ok {
				removed++
			}
		}
		if errors.Is(err, io.EOF) {
			s.index.endPass(pass)
			return removed, nil
		}
		if err != nil {
			return removed, fmt.Errorf("filestore: delete expired: %w", err)
		}
	}
}

// removeExpired removes the directory entry e if it is the file of a
// session that has expired at now, or a temporary file older than
// staleTemp. It reports whether it removed a session file. Files that
// vanish meanwhile, and files that this package did not write, are no
// error. It tells the index of the live session files it meets.
func (s *Store) removeExpired(ctx context.Context, e fs.DirEntry, now time.Time) (bool, error) {
	name := e.Name()
	path := filepath.Join(s.dir, name)
	if strings.HasPrefix(name, tempPrefix) {
		info, err := e.Info()
		if err == nil && now.Sub(info.ModTime()) > staleTemp {
			err = os.Remove(path)
		}
		return false, ignoreGone(err)
	}
	if !isFileName(name) || !e.Type().IsRegular() {
		return false, nil
	}
	// A look without the lock first, since most files are live. A renewal
	// in progress may tear what it reads; the look under the lock decides.
	if h, err := readHeader(path); err != nil || !h.expired(now) {
		if err == nil {
			s.index.observe(name, h.expires)
		}
		return false, ignoreGone(ignoreCorrupt(err))
	}
	release, err := s.lock(ctx, stripeOf(name))
	if err != nil {
		return false, err
	}
	defer release()
	h, err := readHeader(path)
	if err != nil || !h.expired(now) {
		if err == nil {
			s.index.set(name, h.expires)
		}
		return false, ignoreGone(ignoreCorrupt(err))
	}
	if err := os.Remove(path); err != nil {
		return false, ignoreGone(err)
	}
	s.index.remove(name)
	return true, nil
}

func ignoreGone(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func ignoreCorrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return nil
	}
	return err
}
