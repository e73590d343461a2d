// Package filestore keeps sessions in files, one per session, in a
// directory of the local file system.
//
// It suits a single machine that wants sessions to survive a restart
// without running a database: one server, or several processes sharing
// the directory. Any number of Store values in any number of processes may
// use one directory at the same time, because every operation on a session
// runs under an exclusive flock(2) lock. Network file systems are not
// supported: their locks and renames do not give the guarantees this
// package relies on.
//
// # Files
//
// A session lives in a file named by the lowercase hex SHA-256 of its key,
// so file names never depend on what characters a key contains and reveal
// nothing about it. The file starts with a 24-byte header (format magic,
// version, expiry in Unix nanoseconds, key length), then the key itself,
// then the payload. Load checks the recorded key, so even two keys whose
// hashes collided would never read each other's data.
//
// Save writes a new file under a temporary name in the same directory,
// syncs it, renames it over the old one and syncs the directory, so a
// crash leaves either the old session or the new one, never a mix. Delete
// removes the file and syncs the directory. A Load that renews the expiry
// (ttl > 0) rewrites only the 8 bytes of the expiry in place, without
// syncing: after a crash a renewal may be lost, so the session expires as
// if the renewal had not happened.
//
// Locks are spread over 256 lock files named .lock-00 to .lock-ff in the
// directory, chosen by the first byte of the key's hash. They are created
// when first needed and never removed.
//
// # Expiry and cleanup
//
// Expiry follows the clock of the machine. An expired session never loads,
// and Load removes its file when it finds one. There is no background
// goroutine. Files of sessions that expire and are never looked up again
// are removed by Save: at most once a minute a Save starts a pass over the
// directory, and while a pass is under way, at most once a second a Save
// examines the next sweepBatch directory entries (1000), reading only the
// header of each file. The pass also removes temporary files that a
// crashed writer left behind over an hour ago. DeleteExpired runs a whole
// pass at once, for a program that would rather clean up on its own
// schedule. Files that this package did not write are left alone.
package filestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ginsession/ginsession/store"
)

// lockStripes is the number of lock files. Operations on keys whose hashes
// start with the same byte wait for each other.
const lockStripes = 256

// Store is a store.Store that keeps each session in a file. It is safe for
// concurrent use, also by other Store values and other processes using the
// same directory. Create one with New; a Store must not be copied.
//
// Its errors never contain keys: a key holds a session ID, which must not
// end up in logs.
type Store struct {
	dir string
	// slots[i] holds a token while a goroutine of this Store holds lock
	// file i, so that the goroutines of one process queue here, where a
	// canceled context can end the wait, rather than poll the lock file.
	slots [lockStripes]chan struct{}
	sweep sweeper
}

var _ store.Store = (*Store)(nil)

// New returns a Store that keeps sessions in dir, creating the directory
// (mode 0700) if it does not exist. Session files are created with mode
// 0600. New checks that it can create and lock a lock file in dir; on
// systems without flock(2), such as Windows, it returns an error.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("filestore: the directory name is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	s := &Store{dir: abs}
	for i := range s.slots {
		s.slots[i] = make(chan struct{}, 1)
	}
	release, err := s.lock(context.Background(), 0)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	release()
	return s, nil
}

// lock takes the lock for the keys whose hashes start with stripe, and
// returns the function that releases it.
func (s *Store) lock(ctx context.Context, stripe byte) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slot := s.slots[stripe]
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f, err := lockFile(ctx, filepath.Join(s.dir, ".lock-"+strconv.FormatUint(uint64(stripe)|0x100, 16)[1:]))
	if err != nil {
		<-slot
		return nil, err
	}
	return func() {
		f.Close() // releases the flock
		<-slot
	}, nil
}

// locate returns the path of key's file and the stripe of its lock.
func (s *Store) locate(key string) (path string, stripe byte) {
	name := fileName(key)
	return filepath.Join(s.dir, name), stripeOf(name)
}

// stripeOf returns the stripe of the file with the given name, which
// isFileName accepts: the first byte of the hash.
func stripeOf(name string) byte {
	b, _ := strconv.ParseUint(name[:2], 16, 8)
	return byte(b)
}

// Load implements store.Store. With ttl > 0 it writes the new expiry into
// the file's header.
func (s *Store) Load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	data, version, err := s.load(ctx, key, ttl)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, ErrCorrupt) {
		return nil, 0, fmt.Errorf("filestore: load: %w", err)
	}
	return data, version, err
}

func (s *Store) load(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	path, stripe := s.locate(key)
	release, err := s.lock(ctx, stripe)
	if err != nil {
		return nil, 0, err
	}
	defer release()

	flag := os.O_RDONLY
	if ttl > 0 {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, store.ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, err
	}
	h, data, err := decode(b)
	if err != nil {
		return nil, 0, err
	}
	if err := h.checkKey(key); err != nil {
		return nil, 0, err
	}
	now := time.Now()
	if h.expired(now) {
		// Best effort: the file is dead whether or not it goes now.
		_ = os.Remove(path)
		return nil, 0, store.ErrNotFound
	}
	if ttl > 0 {
		var exp [8]byte
		binary.BigEndian.PutUint64(exp[:], uint64(expiry(now, ttl)))
		if _, err := f.WriteAt(exp[:], expiryOffset); err != nil {
			return nil, 0, err
		}
	}
	return data, h.version, nil
}

// Save implements store.Store. It returns an error if ttl <= 0.
func (s *Store) Save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("filestore: save: ttl must be positive, got %v", ttl)
	}
	newVersion, err := s.save(ctx, key, data, version, ttl)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return 0, err
		}
		return 0, fmt.Errorf("filestore: save: %w", err)
	}
	s.sweep.maybeRun(ctx, s, time.Now())
	return newVersion, nil
}

func (s *Store) save(ctx context.Context, key string, data []byte, version uint64, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	path, stripe := s.locate(key)
	release, err := s.lock(ctx, stripe)
	if err != nil {
		return 0, err
	}
	defer release()

	h, err := readHeader(path)
	var current, onDisk uint64
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, ErrCorrupt):
		// Neither this key's live entry nor provably expired: leave it.
		return 0, store.ErrConflict
	case err != nil:
		return 0, err
	default:
		if err := h.checkKey(key); err != nil {
			return 0, store.ErrConflict
		}
		onDisk = h.version
		if !h.expired(time.Now()) {
			current = h.version
		}
	}
	if current != version {
		return 0, store.ErrConflict
	}
	newVersion := nextVersion(version, onDisk)
	contents := encode(newVersion, expiry(time.Now(), ttl), key, data)
	if err := s.replace(path, contents); err != nil {
		return 0, err
	}
	return newVersion, nil
}

// readHeader reads the header of the file at path and the key it records.
func readHeader(path string) (header, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, err
	}
	defer f.Close()
	b := make([]byte, headerLen, headerLen+64)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return header{}, err
	}
	b = b[:n]
	if n == headerLen {
		// Read the key too, once the header says how long it is.
		keyLen := int64(binary.BigEndian.Uint32(b[keyLenOffset:]))
		rest, err := io.ReadAll(io.LimitReader(f, keyLen))
		if err != nil {
			return header{}, err
		}
		b = append(b, rest...)
	}
	h, _, err := decode(b)
	return h, err
}

// replace atomically replaces the file at path with one holding contents:
// it writes a temporary file in the same directory, syncs it, renames it
// to path and syncs the directory.
func (s *Store) replace(path string, contents []byte) (err error) {
	tmp, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(contents); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return s.syncDir()
}

// syncDir makes the creations, renames and removals in the directory
// durable.
func (s *Store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.delete(ctx, key); err != nil {
		return fmt.Errorf("filestore: delete: %w", err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, stripe := s.locate(key)
	release, err := s.lock(ctx, stripe)
	if err != nil {
		return err
	}
	defer release()
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.syncDir()
}

// nextVersion returns a random version that is not 0 and none of avoid.
func nextVersion(avoid ...uint64) uint64 {
next:
	for {
		v := rand.Uint64()
		if v == 0 {
			continue
		}
		for _, a := range avoid {
			if v == a {
				continue next
			}
		}
		return v
	}
}
