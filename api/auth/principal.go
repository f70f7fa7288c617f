package auth

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Authenticator says who sent a request. *Verifier is the real one; tests
// pass fakes.
type Authenticator interface {
	// Authenticate returns the caller, or an error wrapping ErrMissingToken,
	// ErrInvalidRequest, ErrInvalidToken or ErrUnavailable.
	Authenticate(r *http.Request) (*Principal, error)
}

// Principal is the authenticated caller.
type Principal struct {
	Subject string
	Scopes  []string
}

// HasScope is an exact, case-sensitive match against one granted scope.
func (p *Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// Require is authorisation: nil if the caller was granted scope, else a
// *ScopeError.
func (p *Principal) Require(scope string) error {
	if !p.HasScope(scope) {
		return &ScopeError{Scope: scope}
	}
	return nil
}

// Authenticate takes the request's bearer token and verifies it.
func (v *Verifier) Authenticate(r *http.Request) (*Principal, error) {
	raw, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	return v.Verify(r.Context(), raw)
}

// BearerToken takes the token from the request's one Authorization header.
// Besides the standard "Bearer <token>" it accepts a bare JWT, because
// Swagger UI's Authorize box (Swagger 2.0 apiKey) sends exactly what the
// user pasted.
func BearerToken(r *http.Request) (string, error) {
	if len(r.Header.Values("Authorization")) > 1 {
		return "", fmt.Errorf("%w: send exactly one Authorization header", ErrInvalidRequest)
	}
	return bearerToken(r.Header.Get("Authorization"))
}

func bearerToken(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", ErrMissingToken
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		t := strings.TrimSpace(rest)
		if t == "" {
			return "", ErrMissingToken
		}
		// "Bearer Bearer <token>": pasted with its scheme into a box (Swagger
		// UI's, an HTTP client's "Bearer Token" field) that adds one itself.
		if s, _, dup := strings.Cut(t, " "); dup && strings.EqualFold(s, "Bearer") {
			return "", because(ReasonMalformed, fmt.Errorf("%w: the header says \"Bearer\" twice: paste the token alone where the client adds \"Bearer \" itself", ErrInvalidToken))
		}
		if strings.ContainsAny(t, " \t") {
			return "", because(ReasonMalformed, fmt.Errorf("%w: the token contains spaces: send \"Authorization: Bearer <token>\" with the token unchanged", ErrInvalidToken))
		}
		return t, nil
	}
	if !ok && strings.Count(h, ".") == 2 {
		return h, nil
	}
	return "", because(ReasonMalformed, fmt.Errorf("%w: Authorization header must be \"Bearer <token>\"", ErrInvalidToken))
}
