package auth

import (
	"errors"
	"strings"
)

// Why a request was refused, as a small fixed vocabulary: these label
// metrics and log lines, so a caller must never be able to mint a new value.
const (
	ReasonMissingToken   = "missing_token"
	ReasonInvalidRequest = "invalid_request"    // e.g. two Authorization headers
	ReasonMalformed      = "malformed"          // not a compact JWS, or not "Bearer <token>"
	ReasonAlgorithm      = "algorithm"          // alg not in Algorithms ("none", HS256, ...)
	ReasonSignature      = "signature"          // unknown key, or a signature that does not verify
	ReasonIssuer         = "issuer"             // "iss" is not OAUTH2_ISSUER
	ReasonAudience       = "audience"           // "aud" names none of ours
	ReasonExpired        = "expired"            // past "exp" + leeway
	ReasonNotYetValid    = "not_yet_valid"      // before "nbf" - leeway
	ReasonClaims         = "claims"             // no "exp", or claims that do not parse
	ReasonScope          = "insufficient_scope" // valid token without the scope
	ReasonUnavailable    = "idp_unavailable"    // keys could not be fetched
	ReasonOther          = "other"
)

// Reasons lists every value Reason returns for a failure.
var Reasons = []string{ReasonMissingToken, ReasonInvalidRequest, ReasonMalformed, ReasonAlgorithm,
	ReasonSignature, ReasonIssuer, ReasonAudience, ReasonExpired, ReasonNotYetValid, ReasonClaims,
	ReasonScope, ReasonUnavailable, ReasonOther}

// reasoned tags an error with its Reason.
type reasoned struct {
	reason string
	err    error
}

func (e reasoned) Error() string { return e.err.Error() }
func (e reasoned) Unwrap() error { return e.err }

func because(reason string, err error) error { return reasoned{reason, err} }

// Reason is the bounded reason of an authentication or authorisation error,
// "" for nil or an error that is neither.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	if r, ok := errors.AsType[reasoned](err); ok {
		return r.reason
	}
	switch {
	case errors.Is(err, ErrMissingToken):
		return ReasonMissingToken
	case errors.Is(err, ErrInvalidRequest):
		return ReasonInvalidRequest
	case errors.Is(err, ErrInsufficientScope):
		return ReasonScope
	case errors.Is(err, ErrUnavailable):
		return ReasonUnavailable
	case errors.Is(err, ErrInvalidToken):
		return ReasonOther
	}
	return ""
}

// oidcReason classifies go-oidc's errors, which are plain strings. An
// unrecognised text (a go-oidc upgrade) falls back to "other", still bounded;
// the reason tests pin the mapping.
func oidcReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "signature algorithm"):
		return ReasonAlgorithm
	case strings.Contains(msg, "malformed"), strings.Contains(msg, "not signed"), strings.Contains(msg, "multiple signatures"):
		return ReasonMalformed
	case strings.Contains(msg, "different provider"):
		return ReasonIssuer
	case strings.Contains(msg, "verify signature"), strings.Contains(msg, "no matching key"):
		return ReasonSignature
	}
	// exp and nbf are checked in claims.go (SkipExpiryCheck), never here.
	return ReasonOther
}
