package ginsession

import "errors"

// ErrUnavailable reports that the store could not be read or written. A
// session that could not be loaded is unavailable for the whole request:
// reads return nothing, changes are refused, and nothing is written back,
// so the stored session is left exactly as it was. The store's own error
// is wrapped alongside it.
var ErrUnavailable = errors.New("ginsession: session store unavailable")

// ErrTooManyConflicts reports a commit that lost the race with concurrent
// requests more often than Options.CommitAttempts allows. This request's
// changes were not saved.
var ErrTooManyConflicts = errors.New("ginsession: too many concurrent changes to one session")

// ErrHeadersSent reports a change that needed a cookie (a new session, or
// Regenerate) after the response had started, when no cookie can be sent
// any more. The change was not saved.
var ErrHeadersSent = errors.New("ginsession: response already started; the session cookie cannot be sent")

// ErrReservedKey is returned for a key starting with a NUL byte: such keys
// are ginsession's own (flash messages live there).
var ErrReservedKey = errors.New("ginsession: keys starting with a NUL byte are reserved")

// ErrRequestDone is returned for a change made after the middleware has
// finished with the request, for instance from a goroutine holding a
// c.Copy(): there is no commit left to save it.
var ErrRequestDone = errors.New("ginsession: the request has finished; the change cannot be saved")

// ErrResponseReplaced is returned by the response writer's Write and
// WriteString after the session store failed and the ErrorHandler wrote
// the response (by default a 503): the handler's own output is discarded,
// so that the client never receives a success body with an error status.
var ErrResponseReplaced = errors.New("ginsession: the session store failed and the ErrorHandler answered; this write was discarded")

// ErrTooLarge reports a change that would make the encoded session larger
// than Options.MaxSize, or a flash message beyond MaxFlashes. The change
// was not made: the session is as it was before the call.
var ErrTooLarge = errors.New("ginsession: session too large")

// ErrSessionsDisabled is returned for a change when the store keeps
// nothing on purpose (nullstore): sessions are switched off, and a change
// that would be lost is refused instead.
var ErrSessionsDisabled = errors.New("ginsession: sessions are switched off (the store keeps nothing)")
