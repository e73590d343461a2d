package filestore

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// maxEvictPerSave bounds the candidates one Save looks at when the
// directory holds more than WithMaxEntries sessions: usually one is
// evicted, but a directory further over the limit (files that other
// processes created, or a limit lowered since the last run) comes down a
// few files per Save rather than in one long request.
const maxEvictPerSave = 32

// An index tracks the session files in the directory and their expiry, so
// that a Store with a maximum number of entries knows how many there are
// and which expires first without reading the directory on every Save.
//
// The Store's own operations keep it exact: Save, a renewing Load, Delete
// and every removal update it under the key's lock. Files that other
// processes create are added when a pass over the directory (the cleanup,
// DeleteExpired, or New) meets them, and files they remove are dropped at
// the end of a pass that did not meet them. What it believes about a file
// is checked under the file's lock before the file is evicted.
type index struct {
	mu     sync.Mutex
	byName map[string]*indexed
	heap   indexHeap // min-heap on expires
	pass   uint64    // the stamp of the latest pass
}

type indexed struct {
	name    string
	expires int64  // Unix nanoseconds, as in the file's header
	pos     int    // in index.heap
	seen    uint64 // the pass during which it was last set or observed
}

func newIndex() *index {
	return &index{byName: make(map[string]*indexed)}
}

// set records that the file name holds a session that expires at expires.
// The caller holds the file's lock, so this is what the file says.
func (x *index) set(name string, expires int64) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.put(name, expires, true)
}

// observe records the file name, seen by a pass without its lock, with the
// expiry read from it. It adds a file the index did not know, and leaves
// the expiry of one it knows alone: that came from under the lock, and
// may be newer than what a pass read.
func (x *index) observe(name string, expires int64) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.put(name, expires, false)
}

func (x *index) put(name string, expires int64, overwrite bool) {
	e, ok := x.byName[name]
	if !ok {
		e = &indexed{name: name, expires: expires}
		x.byName[name] = e
		heap.Push(&x.heap, e)
	} else if overwrite && e.expires != expires {
		e.expires = expires
		heap.Fix(&x.heap, e.pos)
	}
	e.seen = x.pass
}

// remove forgets the file name.
func (x *index) remove(name string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.drop(name)
}

func (x *index) drop(name string) {
	if e, ok := x.byName[name]; ok {
		delete(x.byName, name)
		heap.Remove(&x.heap, e.pos)
	}
}

// beginPass starts a pass over the directory and returns its stamp.
func (x *index) beginPass() uint64 {
	if x == nil {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pass++
	return x.pass
}

// endPass ends the complete pass stamped pass: files that neither the pass
// nor an operation of the Store met since it began are gone.
func (x *index) endPass(pass uint64) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var gone []string
	for name, e := range x.byName {
		if e.seen < pass {
			gone = append(gone, name)
		}
	}
	for _, name := range gone {
		x.drop(name)
	}
}

// victim returns the file that expires first, other than keep, if the
// index holds more than max files.
func (x *index) victim(max int, keep string) (name string, expires int64, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.heap) <= max {
		return "", 0, false
	}
	e := x.heap[0]
	if e.name == keep {
		// The next one is a child of the root.
		e = x.heap[1]
		if len(x.heap) > 2 && x.heap[2].expires < e.expires {
			e = x.heap[2]
		}
	}
	return e.name, e.expires, true
}

type indexHeap []*indexed

func (h indexHeap) Len() int           { return len(h) }
func (h indexHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h indexHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos = i
	h[j].pos = j
}
func (h *indexHeap) Push(x any) {
	e := x.(*indexed)
	e.pos = len(*h)
	*h = append(*h, e)
}
func (h *indexHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// scan reads the header of every session file in the directory into the
// index, as one pass.
func (s *Store) scan() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	pass := s.index.beginPass()
	for {
		entries, err := d.ReadDir(sweepBatch)
		for _, e := range entries {
			name := e.Name()
			if !isFileName(name) || !e.Type().IsRegular() {
				continue
			}
			h, err := readHeader(filepath.Join(s.dir, name))
			switch {
			case err == nil:
				s.index.observe(name, h.expires)
			case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrCorrupt):
			default:
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			s.index.endPass(pass)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// evict removes session files, the one that expires first before the
// others, until the index holds at most s.maxEntries, never the file
// keep. It looks at no more than limit candidates.
func (s *Store) evict(ctx context.Context, keep string, limit int) error {
	for range limit {
		name, expires, ok := s.index.victim(s.maxEntries, keep)
		if !ok {
			return nil
		}
		if err := s.evictFile(ctx, name, expires); err != nil {
			return fmt.Errorf("evict: %w", err)
		}
	}
	return nil
}

// evictFile removes the file name, which the index says expires at
// expires, unless under its lock it turns out to expire later: renewed or
// saved again by another process since the index learnt of it. Either way
// the index then agrees with the directory.
func (s *Store) evictFile(ctx context.Context, name string, expires int64) error {
	release, err := s.lock(ctx, stripeOf(name))
	if err != nil {
		return err
	}
	defer release()
	path := filepath.Join(s.dir, name)
	h, err := readHeader(path)
	if err == nil && h.expires > expires {
		s.index.set(name, h.expires)
		return nil
	}
	if err == nil {
		_ = os.Remove(path)
	}
	// Gone, corrupt (the cleanup leaves such files alone, so they do not
	// count) or impossible to remove: it is no longer a session this Store
	// can evict, so it leaves the index rather than be tried on every
	// Save.
	s.index.remove(name)
	return nil
}
