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
// Session files, temporary files and lock files get the permission bits of
// WithFileMode, 0600 by default, exactly: the process's umask does not
// narrow them. A directory that New creates gets the same bits plus
// search (x) wherever they grant read: 0700 by default. A directory that
// exists keeps its mode.
//
// # Maximum number of sessions
//
// WithMaxEntries bounds the number of session files, like Flask-Session's
// SESSION_FILE_THRESHOLD. There is no bound by default. With one, the
// Store keeps an index of the session files and their expiry in memory,
// which New fills by reading the header of every file in the directory.
// When a Save leaves more files than the bound, the Store removes the ones
// that expire first, expired ones included, never the one just saved.
// Within one Store the bound is exact once each Save has returned; see
// WithMaxEntries for what other processes sharing the directory change.
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
	"math"
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
	dir  string
	mode fs.FileMode // of session, temporary and lock files
	// slots[i] holds a token while a goroutine of this Store holds lock
	// file i, so that the goroutines of one process queue here, where a
	// canceled context can end the wait, rather than poll the lock file.
	slots [lockStripes]chan struct{}
	sweep sweeper

	maxEntries int    // 0: no bound
	index      *index // nil unless maxEntries > 0
}

var _ store.Store = (*Store)(nil)

// DefaultFileMode is the mode of the files a Store creates unless
// WithFileMode says otherwise: read and write for the owner only, as a
// session file holds what a user's session holds.
const DefaultFileMode fs.FileMode = 0o600

// An Option configures a Store in New.
type Option func(*options)

type options struct {
	maxEntries int
	mode       fs.FileMode
}

// WithMaxEntries bounds the number of session files in the directory to n,
// as Flask-Session's SESSION_FILE_THRESHOLD does; n <= 0 means no bound,
// the default. When a Save leaves more than n, the Store removes session
// files, the one that expires first before the others, until n are left.
// Expired files expire first, so they go before any live session. The
// file just saved is never removed to make room for itself. An evicted
// session behaves as an expired one: it does not load, and a Save with
// its old version returns store.ErrConflict.
//
// The Store keeps the name and expiry of every session file in memory
// (about 150 bytes each), and New reads the header of every file in the
// directory to fill that index: about 20 µs a file from the page cache,
// 2 s for 100,000. If the directory holds more than n files, New evicts
// the excess.
//
// What is exact and what is not:
//
//   - Within one Store, once a Save has returned, the directory holds at
//     most n session files. Between the rename of a new file and the
//     eviction that follows it holds n+1, and a Save that fails to take a
//     lock for eviction (its context ended) leaves the excess to the next
//     Save. A Save looks at no more than 32 files to evict; a directory
//     further over the bound comes down over the next Saves.
//   - The order is exact as far as the Store knows: before it removes a
//     file it reads the file's expiry under the file's lock, and a file
//     that another process renewed since is kept and put back in order.
//     A file whose expiry another process shortened may be evicted later
//     than its turn.
//   - Stores in other processes (or other Store values) sharing the
//     directory each keep an index of their own. A Store learns of the
//     files that the others create or remove when a pass of the cleanup
//     meets them (see the package documentation: a pass starts at most
//     once a minute; DeleteExpired is one too). Until then the directory
//     may hold more than n session files, by up to what the other Stores
//     created since; a session that another Store deleted still counts,
//     so a Save may evict one that would have fit; and two Stores may
//     each evict for the same new file.
//
// The bound does not cover temporary files, lock files, or files this
// package did not write.
//
// There is no bound by default. A session file costs disk space rather
// than memory, and the cleanup removes expired files; a bound set too low
// logs live users out (Flask-Session's default of 500 would on any site
// with more than 500 visitors within a session's lifetime); and the index
// costs memory and a read of the directory in New. Set one where visitors
// can create sessions faster than they expire, for instance bots that
// fill a cart, so that they cannot fill the disk.
func WithMaxEntries(n int) Option {
	return func(o *options) { o.maxEntries = max(n, 0) }
}

// WithFileMode sets the permission bits of the session files, temporary
// files and lock files the Store creates, like Flask-Session's
// SESSION_FILE_MODE. The default is DefaultFileMode, 0600. Files get
// exactly mode, whatever the process's umask. A file keeps the mode it was
// written with until the next Save replaces it.
//
// If New creates the directory, it gives it mode plus search permission
// (x) for every class that mode lets read: 0600 gives 0700, 0640 gives
// 0750, 0660 gives 0770. Missing parent directories are made as
// os.MkdirAll makes them. An existing directory keeps its mode. For
// processes of several users in one group to share the store, use 0660:
// they need to write the session files (a renewing Load rewrites the
// expiry) and, to create them, the directory.
//
// New returns an error if mode has bits other than permission bits, or
// lacks read and write for the owner.
func WithFileMode(mode fs.FileMode) Option {
	return func(o *options) { o.mode = mode }
}

// dirMode returns the mode of a directory New creates for files of mode.
func dirMode(mode fs.FileMode) fs.FileMode {
	return mode | (mode&0o444)>>2
}

// New returns a Store that keeps sessions in dir, creating the directory
// if it does not exist. It checks that it can create and lock a lock file
// in dir; on systems without flock(2), such as Windows, it returns an
// error. With WithMaxEntries it also reads the directory; see there.
func New(dir string, opts ...Option) (*Store, error) {
	o := options{mode: DefaultFileMode}
	for _, opt := range opts {
		opt(&o)
	}
	if dir == "" {
		return nil, errors.New("filestore: the directory name is empty")
	}
	if o.mode&^fs.ModePerm != 0 || o.mode&0o600 != 0o600 {
		return nil, fmt.Errorf("filestore: file mode %v: want permission bits including read and write for the owner (0600)", o.mode)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := makeDir(abs, dirMode(o.mode)); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	s := &Store{dir: abs, mode: o.mode, maxEntries: o.maxEntries}
	for i := range s.slots {
		s.slots[i] = make(chan struct{}, 1)
	}
	release, err := s.lock(context.Background(), 0)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	release()
	if s.maxEntries > 0 {
		s.index = newIndex()
		if err := s.scan(); err != nil {
			return nil, fmt.Errorf("filestore: read the directory: %w", err)
		}
		if err := s.evict(context.Background(), "", math.MaxInt); err != nil {
			return nil, fmt.Errorf("filestore: %w", err)
		}
	}
	return s, nil
}

// makeDir creates the directory dir with exactly mode, whatever the
// umask, and its missing parents as os.MkdirAll does. It leaves an
// existing directory alone.
func makeDir(dir string, mode fs.FileMode) error {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		// MkdirAll does nothing to a directory, and says what else it is.
		return os.MkdirAll(dir, mode)
	}
	if err := os.MkdirAll(filepath.Dir(dir), mode); err != nil {
		return err
	}
	if err := os.Mkdir(dir, mode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by another process
		}
		return err
	}
	return os.Chmod(dir, mode)
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
	f, err := lockFile(ctx, filepath.Join(s.dir, ".lock-"+strconv.FormatUint(uint64(stripe)|0x100, 16)[1:]), s.mode)
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
	name := filepath.Base(path)
	if h.expired(now) {
		// Best effort: the file is dead whether or not it goes now.
		if os.Remove(path) == nil {
			s.index.remove(name)
		}
		return nil, 0, store.ErrNotFound
	}
	expires := h.expires
	if ttl > 0 {
		expires = expiry(now, ttl)
		var exp [8]byte
		binary.BigEndian.PutUint64(exp[:], uint64(expires))
		if _, err := f.WriteAt(exp[:], expiryOffset); err != nil {
			return nil, 0, err
		}
	}
	s.index.set(name, expires)
	return data, h.version, nil
}

// Save implements store.Store. It returns an error if ttl <= 0. With
// WithMaxEntries, once the session is saved it evicts sessions until the
// bound holds; see there.
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
	if s.index != nil {
		// The session is saved whatever happens here. An eviction that
		// could not take its lock leaves the excess to the next Save.
		_ = s.evict(ctx, fileName(key), maxEvictPerSave)
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
	expires := expiry(time.Now(), ttl)
	if err := s.replace(path, encode(newVersion, expires, key, data)); err != nil {
		return 0, err
	}
	s.index.set(filepath.Base(path), expires)
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
// it writes a temporary file in the same directory, with the Store's mode,
// syncs it, renames it to path and syncs the directory.
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
	// CreateTemp makes 0600 less the umask; the mode is to be exact.
	if err := tmp.Chmod(s.mode); err != nil {
		return err
	}
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
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.index.remove(filepath.Base(path))
	if err != nil {
		return nil // there was nothing to delete
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
