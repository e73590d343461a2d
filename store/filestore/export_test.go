package filestore

import (
	"context"
	"testing"
)

// HoldAllLocks takes every lock of s, as a process that is busy with all
// of them would, and returns the function that releases them.
func HoldAllLocks(t *testing.T, s *Store) (release func()) {
	t.Helper()
	var releases []func()
	for i := range lockStripes {
		r, err := s.lock(context.Background(), byte(i))
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	return func() {
		for _, r := range releases {
			r()
		}
	}
}
