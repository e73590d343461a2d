package ginsession

import (
	"context"
	"errors"
)

// An Observer is told about the loads and commits that reach the store,
// for metrics and tracing: Options.Observer. Its methods run on the
// request's goroutine, with the session locked: they must be quick and
// must not use the session. Neither ever sees a session ID.
type Observer interface {
	// StartLoad is called before a session is loaded from the store (a
	// request with no session cookie loads nothing). The store call uses
	// the context it returns, so a tracer can start a span there; done,
	// if not nil, is called once with the outcome.
	StartLoad(ctx context.Context) (_ context.Context, done func(LoadInfo))

	// StartCommit is called before a commit that writes to the store or
	// deletes from it (an unchanged session is not committed). ctx is not
	// canceled when the client goes away. done, if not nil, is called once
	// with the outcome.
	StartCommit(ctx context.Context) (_ context.Context, done func(CommitInfo))
}

// LoadOutcome says what a load found.
type LoadOutcome uint8

// What a load can find.
const (
	LoadHit     LoadOutcome = iota + 1 // a live session
	LoadMiss                           // nothing under the cookie's ID: never saved, expired or deleted
	LoadExpired                        // a session past its AbsoluteTimeout, now deleted
	LoadCorrupt                        // an entry that cannot be read; a fresh session starts
	LoadError                          // the store failed: the session is unavailable
)

// String returns the outcome's name: "hit", "miss", "expired", "corrupt"
// or "error".
func (o LoadOutcome) String() string {
	switch o {
	case LoadHit:
		return "hit"
	case LoadMiss:
		return "miss"
	case LoadExpired:
		return "expired"
	case LoadCorrupt:
		return "corrupt"
	case LoadError:
		return "error"
	}
	return "unknown"
}

// LoadInfo describes a load.
type LoadInfo struct {
	Session string // what carries the ID: the cookie's name, or Options.Header
	Outcome LoadOutcome
	Bytes   int   // the size of the payload read, if any
	Err     error // for LoadCorrupt and LoadError
}

// CommitOutcome says what a commit did.
type CommitOutcome uint8

// What a commit can do.
const (
	CommitSaved   CommitOutcome = iota + 1 // the session was written
	CommitDeleted                          // entries were deleted and nothing written (emptied, destroyed, expired)
	CommitDropped                          // another request had ended the session: the changes were dropped
	CommitError                            // the store failed, or conflicts or MaxSize stopped it
)

// String returns the outcome's name: "saved", "deleted", "dropped" or
// "error".
func (o CommitOutcome) String() string {
	switch o {
	case CommitSaved:
		return "saved"
	case CommitDeleted:
		return "deleted"
	case CommitDropped:
		return "dropped"
	case CommitError:
		return "error"
	}
	return "unknown"
}

// CommitInfo describes a commit.
type CommitInfo struct {
	Session   string // what carries the ID: the cookie's name, or Options.Header
	Outcome   CommitOutcome
	Bytes     int   // the size of the last payload sent to the store, if any
	Conflicts int   // compare-and-set conflicts met and retried
	Err       error // for CommitError
}

// ErrorKind classifies a load's or commit's error for metrics: "conflicts"
// (ErrTooManyConflicts), "too_large" (ErrTooLarge), "corrupt"
// (ErrCorrupt), "unavailable" (ErrUnavailable: the store failed), or
// "other"; "" for nil.
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTooManyConflicts):
		return "conflicts"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	return "other"
}

// commitStats collects what one commit did, for the Observer.
type commitStats struct {
	bytes, conflicts        int
	saved, deleted, dropped bool
}

func (st *commitStats) info(name string, err error) CommitInfo {
	info := CommitInfo{Session: name, Bytes: st.bytes, Conflicts: st.conflicts, Err: err}
	switch {
	case err != nil:
		info.Outcome = CommitError
	case st.dropped:
		info.Outcome = CommitDropped
	case st.saved:
		info.Outcome = CommitSaved
	default:
		info.Outcome = CommitDeleted
	}
	return info
}
