package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"catsdogs/admission"
	"catsdogs/api/auth"

	"github.com/gin-gonic/gin"
)

// admitBody is route middleware, after auth: it names the client for
// admission's fairness, caps the request body at limit and gives the handler
// a bodyBuffer whose memory is reserved from the process-wide budget as the
// body arrives. Nothing is reserved for what a
// client only announces: one that declares 32 MiB and stalls holds the one
// chunk it filled, not the budget, and a crowd of large uploads gets 503s
// instead of pushing the process past its container's memory.
func admitBody(b *admission.Budget, limit int64, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		res := b.Open()
		defer res.Close()
		c.Request = c.Request.WithContext(admission.WithClient(c.Request.Context(), clientName(c)))
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Set(bodyKey, &bodyBuffer{res: res, max: limit + maxReadOver})
		c.Next()
	}
}

// clientName is who a request is from, for admission's fairness between
// clients: the token's subject, else the client's address (X-Forwarded-For
// only from TRUSTED_PROXIES).
func clientName(c *gin.Context) string {
	if p, ok := c.Get(principalKey); ok {
		if p, ok := p.(*auth.Principal); ok && p.Subject != "" {
			return "sub:" + p.Subject
		}
	}
	return "ip:" + c.ClientIP()
}

// bodyKey is where admitBody leaves the request's bodyBuffer.
const bodyKey = "body"

func bodyOf(c *gin.Context) *bodyBuffer { return c.MustGet(bodyKey).(*bodyBuffer) }

const (
	firstChunk = 64 << 10
	// maxReadOver lets the buffer hold a read past the cap, which is how
	// http.MaxBytesReader reports that the body is too large.
	maxReadOver = 512
)

// bodyBuffer holds the file parts of one request in one slice. Its capacity
// is reserved before it is allocated, doubling from 64 KiB up to the body's
// cap, so what the request holds in the budget follows what it has sent.
type bodyBuffer struct {
	buf   []byte
	res   *admission.Reservation
	max   int64
	extra int64 // reserved besides buf (reserve)
}

// readFrom appends r's bytes. A budget that cannot take the next chunk is
// errUploadsFull (503); r's own errors are returned as they are.
func (b *bodyBuffer) readFrom(r io.Reader) error {
	for {
		if len(b.buf) == cap(b.buf) {
			if err := b.grow(); err != nil {
				return err
			}
		}
		n, err := r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (b *bodyBuffer) grow() error {
	size := min(max(2*int64(cap(b.buf)), firstChunk), b.max)
	if size <= int64(cap(b.buf)) {
		// Unreachable behind http.MaxBytesReader, which fails first.
		return &http.MaxBytesError{Limit: b.max - maxReadOver}
	}
	// The old slice becomes garbage once copied: the reservation follows
	// the live buffer, not what the collector has yet to free.
	if err := b.res.Resize(size + b.extra); err != nil {
		return errUploadsFull
	}
	next := make([]byte, len(b.buf), size)
	copy(next, b.buf)
	b.buf = next
	return nil
}

// reserve adds n bytes to the reservation for what the handler makes from
// the body (decoded base64): errUploadsFull when the budget cannot take them.
func (b *bodyBuffer) reserve(n int64) error {
	if err := b.res.Resize(int64(cap(b.buf)) + b.extra + n); err != nil {
		return errUploadsFull
	}
	b.extra += n
	return nil
}

// Len and bytes: what was read so far.
func (b *bodyBuffer) Len() int      { return len(b.buf) }
func (b *bodyBuffer) bytes() []byte { return b.buf }
