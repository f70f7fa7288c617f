package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// NotReady is a failed readiness check: Reason is what /ready tells anyone
// who asks; Err, the cause with its internal detail (an identity provider's
// URL, a dial error), goes only to the log.
type NotReady struct {
	Reason string
	Err    error
}

func (e *NotReady) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *NotReady) Unwrap() error { return e.Err }

// publicReasons words Ready's error for /ready's detail: one reason per
// failing check, separated by "; ", each NotReady by its Reason alone.
func publicReasons(err error) string {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	reasons := make([]string, len(errs))
	for i, e := range errs {
		if nr, ok := errors.AsType[*NotReady](e); ok {
			reasons[i] = nr.Reason
		} else {
			reasons[i] = strings.ReplaceAll(e.Error(), "\n", "; ")
		}
	}
	return strings.Join(reasons, "; ")
}

// refuseNotReady answers a readiness probe 503 not_ready: the public
// reasons to the caller, the causes to the log.
func refuseNotReady(c *gin.Context, log *slog.Logger, err error) {
	requestLogger(c, log).Warn("not ready", "reasons", err)
	abort(c, http.StatusServiceUnavailable, codeNotReady, publicReasons(err))
}
