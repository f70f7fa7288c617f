package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"

	"github.com/gin-gonic/gin"
)

// RequestIDHeader carries a request's id in both directions.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an id we accept: long enough for a UUID, a W3C
// traceparent or a ULID with a prefix, short enough to keep log lines sane.
const maxRequestIDLen = 128

const (
	requestIDKey = "request_id" // the id, for abort's error body
	loggerKey    = "logger"     // the logger with the id attached
)

// requestID gives every request an id: the caller's X-Request-Id if it is
// sane (a proxy or client may already have one to correlate with), else a
// fresh random one. It is echoed in the response, put in error bodies and
// attached to every log line of the request (requestLogger).
func requestID(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		c.Set(requestIDKey, id)
		c.Set(loggerKey, log.With("request_id", id))
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

// saneRequestID accepts 1 to maxRequestIDLen characters from a set that
// cannot break a log line, a header or a JSON string: ASCII letters, digits
// and - _ . : (UUIDs, hex, ULIDs, traceparents).
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_', b == '.', b == ':':
		default:
			return false
		}
	}
	return true
}

// newRequestID is 128 random bits in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// requestLogger is log with the request's id attached, when it has one.
func requestLogger(c *gin.Context, log *slog.Logger) *slog.Logger {
	if l, ok := c.Get(loggerKey); ok {
		if l, ok := l.(*slog.Logger); ok {
			return l
		}
	}
	return log
}
