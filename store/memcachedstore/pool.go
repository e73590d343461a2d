package memcachedstore

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Buffer sizes of a connection. A reply line is short (a code, a size
// and a CAS), so a longer one is refused rather than buffered.
const (
	readBufSize  = 4 << 10
	writeBufSize = 4 << 10
)

// A pool keeps connections to one server and lends each to one request at
// a time. At most cap(slots) connections exist at once; callers wait for
// one, as long as their context allows.
type pool struct {
	addr     string
	dial     DialFunc
	timeout  time.Duration
	maxValue int

	slots chan struct{} // a token for every connection lent out or being dialed

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

func newPool(addr string, dial DialFunc, maxConns int, timeout time.Duration, maxValue int) *pool {
	return &pool{
		addr:     addr,
		dial:     dial,
		timeout:  timeout,
		maxValue: maxValue,
		slots:    make(chan struct{}, maxConns),
	}
}

// A conn is one connection to the server.
type conn struct {
	nc     net.Conn
	r      *bufio.Reader // reads from the conn itself, to count bytes
	w      *bufio.Writer
	read   int  // bytes read from nc during the current request
	reused bool // the conn served an earlier request
}

// Read reads from the network and counts what it got.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.nc.Read(p)
	c.read += n
	return n, err
}

// roundTrip sends the request that write writes and reads the reply, on a
// connection from the pool. A connection that served an earlier request
// may have been closed by the server since (a restart, an idle timeout);
// if it turns out closed before a single byte of the reply arrived, the
// request is sent once more on a new connection. memcached closes
// connections between requests, not during one, so it did not act on the
// first; and were a Save acted on twice, the second would only conflict.
func (p *pool) roundTrip(ctx context.Context, write func(*bufio.Writer)) (reply, error) {
	if err := ctx.Err(); err != nil {
		return reply{}, err
	}
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx, attempt > 0)
		if err != nil {
			return reply{}, err
		}
		rep, reusable, err := c.roundTrip(ctx, p.timeout, p.maxValue, write)
		stale := c.reused && c.read == 0 && closedByPeer(err)
		p.put(c, err == nil && reusable)
		if err == nil {
			return rep, nil
		}
		if attempt == 0 && stale && ctx.Err() == nil {
			continue
		}
		return reply{}, err
	}
}

// get takes an idle connection, or dials a new one if there is none or
// fresh is set.
func (p *pool) get(ctx context.Context, fresh bool) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return nil, ErrClosed
	}
	if n := len(p.idle); n > 0 && !fresh {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		c.reused = true
		return c, nil
	}
	p.mu.Unlock()

	dialCtx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	nc, err := p.dial(dialCtx, "tcp", p.addr)
	if err != nil {
		<-p.slots
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	c := &conn{nc: nc, w: bufio.NewWriterSize(nc, writeBufSize)}
	c.r = bufio.NewReaderSize(c, readBufSize)
	return c, nil
}

// put gives c back to the pool if reuse is set, and closes it otherwise.
func (p *pool) put(c *conn, reuse bool) {
	p.mu.Lock()
	if reuse && !p.closed && c.r.Buffered() == 0 {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		_ = c.nc.Close()
	}
	<-p.slots
}

// close closes the idle connections; connections lent out are closed when
// they come back.
func (p *pool) close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.nc.Close())
	}
	return errors.Join(errs...)
}

// roundTrip writes one request and reads its reply, within timeout and
// ctx. It reports whether the connection may serve another request: not
// after an error, and not if ctx ended meanwhile, which may have moved the
// connection's deadline.
func (c *conn) roundTrip(ctx context.Context, timeout time.Duration, maxValue int, write func(*bufio.Writer)) (rep reply, reusable bool, err error) {
	deadline := time.Now().Add(timeout)
	ctxDeadline, fromCtx := ctx.Deadline()
	if fromCtx && ctxDeadline.Before(deadline) {
		deadline = ctxDeadline
	} else {
		fromCtx = false
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return reply{}, false, err
	}
	// Cancellation interrupts a blocked read or write by moving the
	// deadline into the past.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })

	c.read = 0
	write(c.w)
	err = c.w.Flush()
	if err == nil {
		rep, err = readReply(c.r, maxValue)
	}
	interrupted := !stop()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		} else if fromCtx && errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded
		}
		return reply{}, false, err
	}
	return rep, !interrupted, nil
}

// closedByPeer reports whether err says that the server closed the
// connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
