package auth

import (
	"errors"
	"fmt"
)

// What authentication and authorisation return. Each is one RFC 6750 answer;
// the HTTP layer maps them (api/errors.go).
var (
	// ErrMissingToken: no credentials were sent (401, a challenge without
	// an error code, RFC 6750 §3.1).
	ErrMissingToken = errors.New("missing bearer token")
	// ErrInvalidRequest is a malformed credential, e.g. two Authorization
	// headers: which one would a proxy in front of us have checked? (401
	// invalid_request)
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidToken: the token is not one we accept (401 invalid_token).
	ErrInvalidToken = errors.New("invalid token")
	// ErrInsufficientScope: a valid token without the scope asked for (403
	// insufficient_scope); the error is a *ScopeError naming it.
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrUnavailable means the issuer's keys could not be fetched: our
	// problem (503), not a bad token.
	ErrUnavailable = errors.New("identity provider unavailable")
)

// ScopeError is Principal.Require's error.
type ScopeError struct{ Scope string }

func (e *ScopeError) Error() string {
	return fmt.Sprintf("%v: token lacks scope %q", ErrInsufficientScope, e.Scope)
}

func (e *ScopeError) Unwrap() error { return ErrInsufficientScope }

// Known reports whether err is one of the errors above; an Authenticator's
// other errors must not reach the caller as they are.
func Known(err error) bool {
	for _, e := range []error{ErrMissingToken, ErrInvalidRequest, ErrInvalidToken, ErrInsufficientScope, ErrUnavailable} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
