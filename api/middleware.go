package api

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"catsdogs/api/auth"

	"github.com/gin-gonic/gin"
)

// outerMiddleware is what every request passes first, the router's and
// Starting's alike. Outermost first: the id exists before anything logs;
// metrics and the request log wrap recovery, so a panic is counted and
// logged as a 500.
func outerMiddleware(log *slog.Logger, m *Metrics) []gin.HandlerFunc {
	return []gin.HandlerFunc{requestID(log), m.instrument, requestLog(log), recovery(log), securityHeaders}
}

// principalKey is where authenticate leaves the caller for requireScope.
const principalKey = "principal"

// authenticate is the first half of a protected route: it finds out who is
// calling (auth.Authenticator) and refuses missing or bad credentials with
// 401, or 503 when the identity provider cannot be reached. Token contents
// are never logged.
func authenticate(a auth.Authenticator, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := a.Authenticate(c.Request)
		if err != nil {
			if !auth.Known(err) {
				err = errTokenUnverified // says nothing of what went wrong inside
			}
			fail(c, log, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// requireScope is the second half: the authenticated caller must hold scope
// (403 otherwise).
func requireScope(scope string, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, _ := c.MustGet(principalKey).(*auth.Principal)
		if err := p.Require(scope); err != nil {
			fail(c, log, err)
			return
		}
		c.Next()
	}
}

// requestLog logs one line per request: no headers, so no tokens. client_ip
// follows X-Forwarded-For only from TRUSTED_PROXIES (gin's ClientIP); a
// request whose client hung up before the answer is logged as status 499
// with client_gone=true, not as whatever nobody received. The request id
// comes with the logger (requestID); route is the pattern matched, as the
// metrics label it ("unmatched" for a 404 or 405); auth_reason is auth.Reason's bounded word for a 401/403/503.
// method and path are clipped: Go takes either up to the header limit.
func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t := time.Now()
		c.Next()
		status := c.Writer.Status()
		attrs := []any{"method", clip(c.Request.Method, maxLoggedMethod), "path", clip(c.Request.URL.Path, maxLoggedPath),
			"route", routeLabel(c)}
		if c.Request.Context().Err() != nil {
			attrs = append(attrs, "status", statusClientGone, "client_gone", true)
		} else {
			attrs = append(attrs, "status", status)
		}
		if code := c.GetString(errorCodeKey); code != "" {
			attrs = append(attrs, "error", code)
		}
		if failed, ok := c.Get(failedKey); ok {
			if r := auth.Reason(failed.(error)); r != "" {
				attrs = append(attrs, "auth_reason", r)
			}
		}
		if v, ok := c.Get(resultKey); ok {
			p := v.(*PredictionResponse)
			ms := p.TimingsMS
			attrs = append(attrs, "label", p.Prediction, "queue_ms", ms.Queue, "decode_ms", ms.Decode,
				"preprocess_ms", ms.Preprocess, "inference_ms", ms.Inference, "batch", p.InferenceBatch)
		} else if _, ok := c.Get(resultsKey); ok {
			attrs = append(attrs, "classified", len(answered(c)))
		}
		attrs = append(attrs, "ms", float64(time.Since(t).Microseconds())/1000, "bytes_in", c.Request.ContentLength,
			"bytes_out", max(0, c.Writer.Size()), "client_ip", c.ClientIP())
		requestLogger(c, log).Info("request", attrs...)
	}
}

// How much of a request's method and path the log keeps (and a 405's detail
// repeats): enough to recognise it.
const (
	maxLoggedMethod = 32
	maxLoggedPath   = 512
)

// statusClientGone is nginx's "client closed request", for logs only.
const statusClientGone = 499

// securityHeaders go on every answer: no MIME sniffing, no framing (Swagger
// UI's Authorize box must not be clickjacked), no referrer, and no caching of
// answers (API and pages), which may carry a user's predictions or errors.
// The static files under /static/ may be cached: web.go sets their policy.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(c.Request.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.Next()
}

// opaqueBody hides transport details in body read errors: handlers may put
// an error's text in a response, and a net.OpError names both socket
// addresses ("read tcp 10.0.0.5:8080->...: i/o timeout").
func opaqueBody(c *gin.Context) {
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = readCloser{c.Request.Body}
	}
	c.Next()
}

type readCloser struct{ io.ReadCloser }

func (r readCloser) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = bodyReadError{err}
	}
	return n, err
}

// bodyReadError keeps the cause for errors.Is/As but says only what kind of
// failure it was.
type bodyReadError struct{ err error }

func (e bodyReadError) Unwrap() error { return e.err }

func (e bodyReadError) Error() string {
	var ne net.Error
	switch {
	case errors.As(e.err, &ne) && ne.Timeout():
		return "reading the request body timed out"
	case errors.Is(e.err, io.ErrUnexpectedEOF):
		return "the request body ended early"
	}
	return "the request body could not be read"
}

// recovery turns a panic into a JSON 500 instead of a dropped connection.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecovery(func(c *gin.Context, err any) {
		requestLogger(c, log).Error("panic", "err", err, "path", c.Request.URL.Path)
		abort(c, http.StatusInternalServerError, codeInternal, "internal error")
	})
}
