package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"catsdogs/api/auth"
	"catsdogs/model"

	"github.com/gin-gonic/gin"
)

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	// Error is a stable machine-readable code, e.g. "file_missing".
	Error string `json:"error" example:"file_missing"`
	// Detail explains what went wrong and how to fix it.
	Detail string `json:"detail" example:"multipart field \"file\" is required"`
	// RequestID is the request's X-Request-Id: quote it when reporting a problem.
	RequestID string `json:"request_id,omitempty" example:"4f1c9e7a2b3d4e5f8a9b0c1d2e3f4a5b"`
}

// Error codes, one per distinct client action.
const (
	codeFileMissing       = "file_missing"
	codeFileEmpty         = "file_empty"
	codeFileMultiple      = "multiple_files"
	codeNotMultipart      = "unsupported_media_type"
	codeUnsupportedImage  = "unsupported_image"
	codeCorruptImage      = "corrupt_image"
	codeTooLarge          = "payload_too_large"
	codeImageTooLarge     = "image_too_large"
	codeBadRequest        = "bad_request"
	codeInvalidToken      = "invalid_token"
	codeInvalidRequest    = "invalid_request"
	codeInsufficientScope = "insufficient_scope"
	codeAuthUnavailable   = "auth_unavailable"
	codeBusy              = "busy"
	codeNotReady          = "not_ready"
	codeNotFound          = "not_found"
	codeMethodNotAllowed  = "method_not_allowed"
	codeInternal          = "internal_error"
)

// Errors of the HTTP layer's own. The rest of the vocabulary is auth's
// (auth/errors.go) and the model's (model/errors.go).
var (
	errNotMultipart  = errors.New("not multipart/form-data")
	errMalformedBody = errors.New("malformed multipart body")
	errFileMissing   = errors.New("no file part")
	errFileEmpty     = errors.New("empty file part")
	errFileMultiple  = errors.New("more than one file part")
	errUploadsFull   = errors.New("memory budget full of request bodies")
	// errTokenUnverified stands in for an Authenticator's unexpected error.
	errTokenUnverified = detailed{auth.ErrInvalidToken, "token could not be verified"}
)

// detailed is an error whose text is the client's whole explanation and
// which matches kind with errors.Is.
type detailed struct {
	kind   error
	detail string
}

func (e detailed) Error() string { return e.detail }
func (e detailed) Unwrap() error { return e.kind }

// fail answers err: the one place an error becomes a status, a code, a
// detail and headers (RFC 6750 challenges, Retry-After). Only errors whose
// text is meant for the client show it; unexpected ones are logged and
// answered with a generic 500.
func fail(c *gin.Context, log *slog.Logger, err error) {
	c.Set(failedKey, err)
	log = requestLogger(c, log)
	retry := func(s string) { c.Header("Retry-After", s) }
	challenge := func(code, desc string) {
		c.Header("WWW-Authenticate", fmt.Sprintf(`Bearer realm="catsdogs", error=%q, error_description=%q`, code, headerSafe(desc)))
	}
	var scopeErr *auth.ScopeError
	var tooBig *http.MaxBytesError
	switch {
	// The request itself.
	case errors.Is(err, errNotMultipart):
		abort(c, http.StatusUnsupportedMediaType, codeNotMultipart, err.Error())
	case errors.Is(err, errMalformedBody):
		abort(c, http.StatusBadRequest, codeBadRequest, malformedDetail(err))
	case errors.Is(err, errFileMissing):
		abort(c, http.StatusBadRequest, codeFileMissing, err.Error())
	case errors.Is(err, errFileEmpty):
		abort(c, http.StatusBadRequest, codeFileEmpty, err.Error())
	case errors.Is(err, errFileMultiple):
		abort(c, http.StatusBadRequest, codeFileMultiple, err.Error())
	case errors.As(err, &tooBig):
		abort(c, http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("request body is over the %d-byte limit (MAX_UPLOAD_BYTES)", tooBig.Limit))
	case errors.Is(err, errUploadsFull):
		retry("1")
		abort(c, http.StatusServiceUnavailable, codeBusy, "the server holds as many uploads as its memory budget allows; retry shortly")

	// Authentication and authorisation, per RFC 6750.
	case errors.As(err, &scopeErr):
		c.Header("WWW-Authenticate", fmt.Sprintf(`Bearer realm="catsdogs", error="insufficient_scope", scope=%q`, scopeErr.Scope))
		abort(c, http.StatusForbidden, codeInsufficientScope, fmt.Sprintf("token is valid but lacks the scope %q", scopeErr.Scope))
	case errors.Is(err, auth.ErrUnavailable):
		log.Error("token verification unavailable", "err", err)
		retry("5")
		abort(c, http.StatusServiceUnavailable, codeAuthUnavailable, "cannot reach the identity provider to verify tokens; try again shortly")
	case errors.Is(err, auth.ErrMissingToken):
		// RFC 6750 §3.1: no credentials, so no error code in the challenge.
		c.Header("WWW-Authenticate", `Bearer realm="catsdogs"`)
		abort(c, http.StatusUnauthorized, codeInvalidToken, "missing bearer token: send \"Authorization: Bearer <access token>\"")
	case errors.Is(err, auth.ErrInvalidRequest):
		challenge(codeInvalidRequest, err.Error())
		abort(c, http.StatusUnauthorized, codeInvalidRequest, err.Error())
	case errors.Is(err, auth.ErrInvalidToken):
		challenge(codeInvalidToken, err.Error())
		abort(c, http.StatusUnauthorized, codeInvalidToken, err.Error())

	// Classification.
	case errors.Is(err, model.ErrUnsupportedFormat):
		abort(c, http.StatusUnsupportedMediaType, codeUnsupportedImage, err.Error())
	case errors.Is(err, model.ErrImageTooLarge):
		abort(c, http.StatusRequestEntityTooLarge, codeImageTooLarge, err.Error())
	case errors.Is(err, model.ErrCorruptImage):
		abort(c, http.StatusUnprocessableEntity, codeCorruptImage, err.Error())
	case errors.Is(err, model.ErrBusy):
		retry("1")
		abort(c, http.StatusServiceUnavailable, codeBusy, "all inference workers are busy and the queue is full; retry shortly")
	case errors.Is(err, model.ErrMemoryFull):
		retry("1")
		abort(c, http.StatusServiceUnavailable, codeBusy, "other requests hold the memory this image needs to decode; retry shortly")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away while queued; nobody reads this answer.
		abort(c, http.StatusServiceUnavailable, codeBusy, "request cancelled while waiting for a worker")

	default:
		log.Error("request failed", "err", err)
		abort(c, http.StatusInternalServerError, codeInternal, "inference failed")
	}
}

// malformedDetail explains a multipart body that could not be parsed, in
// fixed words: Go's parser errors ("multipart: NextPart: EOF", "malformed
// MIME header line: ...") name its internals and echo the client's bytes.
func malformedDetail(err error) string {
	const howTo = "; send the image as multipart/form-data in the field \"file\" (curl -F file=@photo.jpg)"
	var readErr bodyReadError
	switch {
	case errors.Is(err, http.ErrMissingBoundary):
		return "Content-Type multipart/form-data has no boundary parameter" + howTo
	case errors.As(err, &readErr):
		return readErr.Error() // already transport-free (opaqueBody)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the multipart body ends before its closing boundary (\"--<boundary>--\" from Content-Type)" + howTo
	}
	return "the multipart body is malformed: each part must start with the boundary line from Content-Type, then headers such as Content-Disposition" + howTo
}

// abort ends the request with a JSON error body.
func abort(c *gin.Context, status int, code, detail string) {
	c.Set(errorCodeKey, code)
	c.AbortWithStatusJSON(status, ErrorResponse{Error: code, Detail: detail, RequestID: c.GetString(requestIDKey)})
}

// errorCodeKey is where abort leaves the code for the request log.
const errorCodeKey = "error_code"

// headerSafe keeps an error description inside RFC 6750's allowed characters.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, s)
}
