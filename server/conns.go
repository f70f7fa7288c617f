package server

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// PressureIdleTimeout is the idle timeout near MaxConns, instead of
// IdleTimeout's 120 s: long enough for a client's next request on the same
// connection, short enough that idle connections cannot hold the slots.
const PressureIdleTimeout = time.Second

// conns tracks the server's connections by state (http.Server.ConnState)
// so that idle keep-alive connections cannot hold every MaxConns slot: from
// high open connections on, those idle for PressureIdleTimeout are closed,
// oldest first, until there is room. Clients simply reconnect; a
// connection in a request is never touched.
type conns struct {
	high int // 0: no cap, never close

	mu    sync.Mutex
	open  int                    // accepted and not yet closed
	idle  map[net.Conn]time.Time // since when, for the oldest first
	shed  map[net.Conn]bool      // closed here, not yet reported closed
	timer *time.Timer            // runs shed when the oldest idle one is due
}

// pressure is where closing idle connections starts: 7/8 of the cap (448
// of 512), the whole cap below 8, so a burst of new clients still finds
// free slots while the idle ones go.
func pressure(maxConns int) int { return maxConns - maxConns/8 }

func newConns(maxConns int) *conns {
	return &conns{high: pressure(maxConns), idle: map[net.Conn]time.Time{}, shed: map[net.Conn]bool{}}
}

// state is the http.Server's ConnState hook.
func (t *conns) state(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s {
	case http.StateNew:
		t.open++
	case http.StateIdle:
		t.idle[c] = time.Now()
	case http.StateActive:
		delete(t.idle, c)
	case http.StateClosed, http.StateHijacked:
		t.open--
		delete(t.idle, c)
		delete(t.shed, c)
	}
	if t.high > 0 {
		t.shedLocked()
	}
}

// shedLocked closes connections idle for PressureIdleTimeout, oldest first,
// until fewer than high remain open; if a younger idle one could go, it
// looks again when that one is due.
func (t *conns) shedLocked() {
	excess := t.open - len(t.shed) - t.high + 1
	if excess <= 0 || len(t.idle) == 0 {
		return
	}
	oldest := make([]net.Conn, 0, len(t.idle))
	for c := range t.idle {
		oldest = append(oldest, c)
	}
	slices.SortFunc(oldest, func(a, b net.Conn) int { return t.idle[a].Compare(t.idle[b]) })
	now := time.Now()
	for _, c := range oldest[:min(excess, len(oldest))] {
		if wait := PressureIdleTimeout - now.Sub(t.idle[c]); wait > 0 {
			t.wakeLocked(wait)
			return
		}
		delete(t.idle, c)
		t.shed[c] = true
		c.Close()
	}
}

// wakeLocked runs shedLocked again after d.
func (t *conns) wakeLocked(d time.Duration) {
	if t.timer == nil {
		t.timer = time.AfterFunc(d, func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.shedLocked()
		})
		return
	}
	t.timer.Reset(d)
}

// scanListener's connections watch their bytes for a Content-Length header,
// which net/http deletes when Transfer-Encoding is also present: RFC 9112
// §6.1 wants such a connection closed after the answer (a proxy in front
// may have framed the body by the other header: request smuggling).
type scanListener struct{ net.Listener }

func (l scanListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &scanConn{Conn: c}, nil
}

// contentLength is what scanConn looks for, lower case, at a line's start.
const contentLength = "\ncontent-length:"

// scanConn marks sawLength when a line starting "Content-Length:" (any
// case) has been read since the last request began. It may also match a
// body's line (a multipart part's header): that only costs a reconnect.
type scanConn struct {
	net.Conn
	sawLength atomic.Bool // set by reads, taken by each request
	matched   int         // bytes of contentLength matched at the end of the last read
}

func (c *scanConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.scan(p[:n]) {
		c.sawLength.Store(true)
	}
	return n, err
}

// scan reports whether p, following the bytes read before it, completes
// contentLength; Go's server never reads a connection from two goroutines
// at once.
func (c *scanConn) scan(p []byte) bool {
	i := 0
	if c.matched > 0 { // a match cut by the previous read
		n := matchFold(p, contentLength[c.matched:])
		if c.matched+n == len(contentLength) {
			c.matched = 0
			return true
		}
		if n == len(p) {
			c.matched += n
			return false
		}
		c.matched, i = 0, n
	}
	for {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return false
		}
		i += j
		n := matchFold(p[i:], contentLength)
		if n == len(contentLength) {
			return true
		}
		if i+n == len(p) { // p ends inside a possible match
			c.matched = n
			return false
		}
		i++
	}
}

// matchFold is how many leading bytes of p match want (lower case ASCII),
// ignoring case.
func matchFold(p []byte, want string) int {
	n := 0
	for ; n < len(p) && n < len(want); n++ {
		b := p[n]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != want[n] {
			break
		}
	}
	return n
}

type connKey struct{}

// withConn is http.Server.ConnContext: it lets closeOnConflict find the
// request's connection.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// closeOnConflict answers a request that came with both Transfer-Encoding
// and Content-Length, then closes its connection.
func closeOnConflict(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*scanConn); ok {
			if c.sawLength.Swap(false) && len(r.TransferEncoding) > 0 {
				w.Header().Set("Connection", "close")
			}
		}
		h.ServeHTTP(w, r)
	})
}
