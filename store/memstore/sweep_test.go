package memstore

import (
	"context"
	"testing"
	"time"
)

func TestSaveSweepsExpiredEntriesAtMostOncePerInterval(t *testing.T) {
	ctx := context.Background()
	s := New()
	expired := entry{data: []byte("old"), version: 1, expires: time.Now().Add(-time.Second)}
	s.entries["expired-1"] = expired
	if _, err := s.Save(ctx, "fresh-1", []byte("x"), 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.entries["expired-1"]; ok || len(s.entries) != 1 {
		t.Fatalf("after the first Save, entries = %v; want only fresh-1", keys(s))
	}

	// Within the interval, Save leaves other expired entries alone.
	s.entries["expired-2"] = expired
	if _, err := s.Save(ctx, "fresh-2", []byte("x"), 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(s.entries) != 3 {
		t.Fatalf("a second Save within %v swept: entries = %v", sweepInterval, keys(s))
	}

	s.nextSweep = time.Now().Add(-time.Nanosecond)
	if _, err := s.Save(ctx, "fresh-3", []byte("x"), 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.entries["expired-2"]; ok || len(s.entries) != 3 {
		t.Fatalf("a Save after the interval did not sweep: entries = %v", keys(s))
	}
}

func TestSaveRejectsNonPositiveTTL(t *testing.T) {
	s := New()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Save(context.Background(), "k", []byte("x"), 0, ttl); err == nil {
			t.Errorf("Save with ttl %v succeeded", ttl)
		}
	}
	if len(s.entries) != 0 {
		t.Fatalf("entries = %v after rejected Saves", keys(s))
	}
}

func keys(s *Store) []string {
	var ks []string
	for k := range s.entries {
		ks = append(ks, k)
	}
	return ks
}
