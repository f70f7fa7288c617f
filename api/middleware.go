package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"catsdogs/api/auth"

	"github.com/gin-gonic/gin"
)

// Authenticator decides whether a request may use a protected route. The
// router takes it as a dependency: production passes an OIDC one, tests with
// auth overridden pass AllowAll.
type Authenticator interface {
	// Authenticate returns the caller, or an error wrapping ErrMissingToken,
	// auth.ErrInvalidToken, ErrInsufficientScope or auth.ErrUnavailable.
	Authenticate(r *http.Request, scope string) (*auth.Principal, error)
}

var (
	ErrMissingToken      = errors.New("missing bearer token")
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrInvalidRequest is a malformed credential, e.g. two Authorization
	// headers: which one would a proxy in front of us have checked?
	ErrInvalidRequest = errors.New("invalid request")
)

// AllowAll lets every request through: AUTH_DISABLED=true, and unit tests.
type AllowAll struct{}

func (AllowAll) Authenticate(*http.Request, string) (*auth.Principal, error) {
	return &auth.Principal{Subject: "anonymous"}, nil
}

// OIDCAuth validates "Authorization: Bearer <jwt>" with an OIDC verifier and
// then requires the scope.
type OIDCAuth struct{ V *auth.Verifier }

func (a OIDCAuth) Authenticate(r *http.Request, scope string) (*auth.Principal, error) {
	if len(r.Header.Values("Authorization")) > 1 {
		return nil, fmt.Errorf("%w: send exactly one Authorization header", ErrInvalidRequest)
	}
	raw, err := bearerToken(r.Header.Get("Authorization"))
	if err != nil {
		return nil, err
	}
	p, err := a.V.Verify(r.Context(), raw)
	if err != nil {
		return nil, err
	}
	if scope != "" && !p.HasScope(scope) {
		return p, fmt.Errorf("%w: token lacks scope %q", ErrInsufficientScope, scope)
	}
	return p, nil
}

// bearerToken takes the token from an Authorization header. Besides the
// standard "Bearer <token>" it accepts a bare JWT, because Swagger UI's
// Authorize box (Swagger 2.0 apiKey) sends exactly what the user pasted.
func bearerToken(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", ErrMissingToken
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		if t := strings.TrimSpace(rest); t != "" {
			return t, nil
		}
		return "", ErrMissingToken
	}
	if !ok && strings.Count(h, ".") == 2 {
		return h, nil
	}
	return "", fmt.Errorf("%w: Authorization header must be \"Bearer <token>\"", auth.ErrInvalidToken)
}

// RequireScope guards a route: 401 for a missing or bad token, 403 for a good
// token without the scope, 503 if the issuer's keys are unreachable. Headers
// follow RFC 6750; token contents are never logged.
func RequireScope(a Authenticator, scope string, log *slog.Logger) gin.HandlerFunc {
	if log == nil {
		log = slog.Default()
	}
	return func(c *gin.Context) {
		p, err := a.Authenticate(c.Request, scope)
		switch {
		case err == nil:
			c.Set("principal", p)
			c.Next()
		case errors.Is(err, ErrInsufficientScope):
			c.Header("WWW-Authenticate", fmt.Sprintf(`Bearer realm="catsdogs", error="insufficient_scope", scope=%q`, scope))
			abort(c, http.StatusForbidden, codeInsufficientScope, fmt.Sprintf("token is valid but lacks the scope %q", scope))
		case errors.Is(err, auth.ErrUnavailable):
			log.Error("token verification unavailable", "err", err)
			c.Header("Retry-After", "5")
			abort(c, http.StatusServiceUnavailable, codeAuthUnavailable, "cannot reach the identity provider to verify tokens; try again shortly")
		case errors.Is(err, ErrMissingToken):
			// RFC 6750 §3.1: no credentials, so no error code in the challenge.
			c.Header("WWW-Authenticate", `Bearer realm="catsdogs"`)
			abort(c, http.StatusUnauthorized, codeInvalidToken, "missing bearer token: send \"Authorization: Bearer <access token>\"")
		case errors.Is(err, ErrInvalidRequest):
			c.Header("WWW-Authenticate", fmt.Sprintf(`Bearer realm="catsdogs", error="invalid_request", error_description=%q`, headerSafe(err.Error())))
			abort(c, http.StatusUnauthorized, codeInvalidRequest, err.Error())
		default:
			msg := err.Error()
			if !errors.Is(err, auth.ErrInvalidToken) {
				msg = "token could not be verified"
			}
			c.Header("WWW-Authenticate", fmt.Sprintf(`Bearer realm="catsdogs", error="invalid_token", error_description=%q`, headerSafe(msg)))
			abort(c, http.StatusUnauthorized, codeInvalidToken, msg)
		}
	}
}

// headerSafe keeps an error description inside RFC 6750's allowed characters.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, s)
}

// requestLog logs one line per request: no headers, so no tokens. client_ip
// follows X-Forwarded-For only from TRUSTED_PROXIES (gin's ClientIP); a
// request whose client hung up before the answer is logged as status 499
// with client_gone=true, not as whatever nobody received.
func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t := time.Now()
		c.Next()
		status := c.Writer.Status()
		attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path}
		if c.Request.Context().Err() != nil {
			attrs = append(attrs, "status", statusClientGone, "client_gone", true)
		} else {
			attrs = append(attrs, "status", status)
		}
		if code := c.GetString(errorCodeKey); code != "" {
			attrs = append(attrs, "error", code)
		}
		attrs = append(attrs, "ms", float64(time.Since(t).Microseconds())/1000, "bytes_in", c.Request.ContentLength,
			"client_ip", c.ClientIP())
		log.Info("request", attrs...)
	}
}

// statusClientGone is nginx's "client closed request", for logs only.
const statusClientGone = 499

// securityHeaders go on every answer: no MIME sniffing, no framing (Swagger
// UI's Authorize box must not be clickjacked), no referrer, and no caching of
// API answers, which may carry a user's predictions or errors. The docs'
// static files may be cached.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(c.Request.URL.Path, "/docs/") {
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
		log.Error("panic", "err", err, "path", c.Request.URL.Path)
		abort(c, http.StatusInternalServerError, codeInternal, "internal error")
	})
}
