package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"catsdogs/admission"
	"catsdogs/api/auth"
	"catsdogs/model"
	"catsdogs/oip"

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
	codeTooManyFiles      = "too_many_files"
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
	codeOriginNotAllowed  = "cors_origin_not_allowed"
	codeInternal          = "internal_error"
	codeModelNotFound     = "model_not_found"
)

// Errors of the HTTP layer's own. The rest of the vocabulary is auth's
// (auth/errors.go) and the model's (model/errors.go).
var (
	errNotMultipart  = errors.New("not multipart/form-data")
	errMalformedBody = errors.New("malformed multipart body")
	errBadJSON       = errors.New("malformed JSON body")
	errFileMissing   = errors.New("no file part")
	errFileEmpty     = errors.New("empty file part")
	errFileMultiple  = errors.New("more than one file part")
	errUploadsFull   = fmt.Errorf("%w (request bodies)", admission.ErrMemoryFull)
	// errPredictBody marks a /predict body over PREDICT_MAX_BYTES (with the
	// *http.MaxBytesError), so the answer names that setting.
	errPredictBody = errors.New("predict body over its cap")
	// errTokenUnverified stands in for an Authenticator's unexpected error.
	errTokenUnverified = detailed{auth.ErrInvalidToken, "token could not be verified"}
)

// tooManyFiles is a /predict request with more file parts than allowed.
type tooManyFiles struct{ limit int }

func (e tooManyFiles) Error() string { return fmt.Sprintf("more than %d file parts", e.limit) }

// detailed is an error whose text is the client's whole explanation and
// which matches kind with errors.Is.
type detailed struct {
	kind   error
	detail string
}

func (e detailed) Error() string { return e.detail }
func (e detailed) Unwrap() error { return e.kind }

// fail answers err: the one place an error becomes a status, a code, a
// detail and headers (RFC 6750 challenges, Retry-After), through describe.
// Only errors whose text is meant for the client show it; unexpected ones are
// logged and answered with a generic 500.
func fail(c *gin.Context, log *slog.Logger, err error) {
	c.Set(failedKey, err)
	a := describe(err)
	if a.logAs != "" {
		requestLogger(c, log).Error(a.logAs, "err", err)
	}
	for _, h := range a.headers {
		c.Header(h[0], h[1])
	}
	abort(c, a.status, a.code, a.detail)
}

// answer is what an error becomes over HTTP.
type answer struct {
	status       int
	code, detail string
	headers      [][2]string
	logAs        string // non-empty: log the error with this message (ours, not the client's)
	reason       string // a 503's reason on catsdogs_rejected_total
}

// describe maps err to its answer. /upload answers with it through fail;
// /predict also words each image's own error with it.
func describe(err error) answer {
	retry := func(a answer, s string, reason string) answer {
		a.headers = append(a.headers, [2]string{"Retry-After", s})
		a.reason = reason
		return a
	}
	busy := strconv.Itoa(int(admission.RetryAfter / time.Second))
	challenge := func(code, desc string) [][2]string {
		return [][2]string{{"WWW-Authenticate", fmt.Sprintf(`Bearer realm="catsdogs", error=%q, error_description=%q`, code, headerSafe(desc))}}
	}
	var scopeErr *auth.ScopeError
	var tooBig *http.MaxBytesError
	var tooMany tooManyFiles
	switch {
	// The request itself.
	case errors.Is(err, errNotMultipart):
		return answer{status: http.StatusUnsupportedMediaType, code: codeNotMultipart, detail: err.Error()}
	case errors.Is(err, errMalformedBody):
		return answer{status: http.StatusBadRequest, code: codeBadRequest, detail: malformedDetail(err)}
	case errors.Is(err, errBadJSON):
		return answer{status: http.StatusBadRequest, code: codeBadRequest, detail: err.Error()}
	case errors.Is(err, oip.ErrModelNotFound):
		return answer{status: http.StatusNotFound, code: codeModelNotFound, detail: err.Error()}
	case errors.Is(err, oip.ErrInvalid):
		return answer{status: http.StatusBadRequest, code: codeBadRequest, detail: err.Error()}
	case errors.Is(err, oip.ErrTooMany):
		return answer{status: http.StatusRequestEntityTooLarge, code: codeTooManyFiles, detail: err.Error()}
	case errors.Is(err, errFileMissing):
		return answer{status: http.StatusBadRequest, code: codeFileMissing, detail: err.Error()}
	case errors.Is(err, errFileEmpty):
		return answer{status: http.StatusBadRequest, code: codeFileEmpty, detail: err.Error()}
	case errors.Is(err, errFileMultiple):
		return answer{status: http.StatusBadRequest, code: codeFileMultiple, detail: err.Error()}
	case errors.As(err, &tooMany):
		return answer{status: http.StatusRequestEntityTooLarge, code: codeTooManyFiles,
			detail: fmt.Sprintf("send at most %d files per request (PREDICT_MAX_FILES); split the rest into further requests", tooMany.limit)}
	case errors.As(err, &tooBig):
		what := "MAX_UPLOAD_BYTES"
		if errors.Is(err, errPredictBody) {
			what = "PREDICT_MAX_BYTES"
		}
		return answer{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
			detail: fmt.Sprintf("request body is over the %d-byte limit (%s)", tooBig.Limit, what)}
	case errors.Is(err, errUploadsFull):
		return retry(answer{status: http.StatusServiceUnavailable, code: codeBusy,
			detail: "the server holds as many uploads as its memory budget allows; retry shortly"}, busy, rejectMemory)

	// Authentication and authorisation, per RFC 6750.
	case errors.As(err, &scopeErr):
		return answer{status: http.StatusForbidden, code: codeInsufficientScope,
			detail:  fmt.Sprintf("token is valid but lacks the scope %q", scopeErr.Scope),
			headers: [][2]string{{"WWW-Authenticate", fmt.Sprintf(`Bearer realm="catsdogs", error="insufficient_scope", scope=%q`, scopeErr.Scope)}}}
	case errors.Is(err, auth.ErrUnavailable):
		return retry(answer{status: http.StatusServiceUnavailable, code: codeAuthUnavailable,
			detail: "cannot reach the identity provider to verify tokens; try again shortly", logAs: "token verification unavailable"}, "5", rejectAuthUnavailable)
	case errors.Is(err, auth.ErrMissingToken):
		// RFC 6750 §3.1: no credentials, so no error code in the challenge.
		return answer{status: http.StatusUnauthorized, code: codeInvalidToken,
			detail:  "missing bearer token: send \"Authorization: Bearer <access token>\"",
			headers: [][2]string{{"WWW-Authenticate", `Bearer realm="catsdogs"`}}}
	case errors.Is(err, auth.ErrInvalidRequest):
		return answer{status: http.StatusUnauthorized, code: codeInvalidRequest, detail: err.Error(), headers: challenge(codeInvalidRequest, err.Error())}
	case errors.Is(err, auth.ErrInvalidToken):
		return answer{status: http.StatusUnauthorized, code: codeInvalidToken, detail: err.Error(), headers: challenge(codeInvalidToken, err.Error())}

	// Classification.
	case errors.Is(err, model.ErrUnsupportedFormat):
		return answer{status: http.StatusUnsupportedMediaType, code: codeUnsupportedImage, detail: err.Error()}
	case errors.Is(err, model.ErrImageTooLarge):
		return answer{status: http.StatusRequestEntityTooLarge, code: codeImageTooLarge, detail: err.Error()}
	case errors.Is(err, model.ErrCorruptImage):
		return answer{status: http.StatusUnprocessableEntity, code: codeCorruptImage, detail: err.Error()}
	case errors.Is(err, admission.ErrBusy):
		return retry(answer{status: http.StatusServiceUnavailable, code: codeBusy,
			detail: "all inference workers are busy and the queue is full; retry shortly"}, busy, rejectQueueFull)
	case errors.Is(err, admission.ErrMemoryFull):
		return retry(answer{status: http.StatusServiceUnavailable, code: codeBusy,
			detail: "other requests hold the memory this image needs to decode; retry shortly"}, busy, rejectMemory)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away while queued; nobody reads this answer.
		return answer{status: http.StatusServiceUnavailable, code: codeBusy, detail: "request cancelled while waiting for a worker",
			reason: rejectClientGone}
	}
	return answer{status: http.StatusInternalServerError, code: codeInternal, detail: "inference failed", logAs: "request failed"}
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

// abort ends the request with a JSON error body: ours, or the Open
// Inference Protocol's {"error": "<detail>"} on its routes (oipKey).
func abort(c *gin.Context, status int, code, detail string) {
	c.Set(errorCodeKey, code)
	if c.GetBool(oipKey) {
		c.AbortWithStatusJSON(status, oip.ErrorResponse{Error: detail})
		return
	}
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
