package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// claims we read beyond what go-oidc checks. Scope shapes differ by provider:
// "scope" space-separated (Auth0, Keycloak), "scp" array (Okta, Hydra) or
// string (Entra ID), "permissions" array (Auth0 RBAC).
type claims struct {
	Subject     string       `json:"sub"`
	Audience    audience     `json:"aud"`
	Expiry      *numericDate `json:"exp"`
	NotBefore   *numericDate `json:"nbf"`
	Scope       scopeClaim   `json:"scope"`
	Scp         scopeClaim   `json:"scp"`
	Permissions scopeClaim   `json:"permissions"`
}

// checkClaims validates a verified token's payload at time now: exp (required)
// and nbf with leeway, and that "aud" names one of ours. It is everything
// Verify decides from the claims alone, so the fuzz target covers it.
func (v *Verifier) checkClaims(payload []byte, now time.Time) (*Principal, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, because(ReasonClaims, fmt.Errorf("%w: unreadable claims: %v", ErrInvalidToken, err))
	}
	if c.Expiry == nil {
		return nil, because(ReasonClaims, fmt.Errorf("%w: no exp claim", ErrInvalidToken))
	}
	if exp := c.Expiry.Time; now.After(exp.Add(v.leeway)) {
		return nil, because(ReasonExpired, fmt.Errorf("%w: token expired at %s", ErrInvalidToken, exp.UTC().Format(time.RFC3339)))
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time; now.Add(v.leeway).Before(nbf) {
			return nil, because(ReasonNotYetValid, fmt.Errorf("%w: token not valid before %s (nbf)", ErrInvalidToken, nbf.UTC().Format(time.RFC3339)))
		}
	}
	if !slices.ContainsFunc(v.audiences, func(a string) bool { return slices.Contains(c.Audience, a) }) {
		// Never our audiences: the detail goes to anyone who sends a token.
		return nil, because(ReasonAudience, fmt.Errorf("%w: the token's audience (aud) is not this API", ErrInvalidToken))
	}
	return &Principal{Subject: c.Subject, Scopes: mergeScopes(c.Scope, c.Scp, c.Permissions)}, nil
}

// maxNumericDate is 9999-12-31T23:59:59Z. Larger values (say nbf: 1e20) would
// overflow int64 nanoseconds and wrap into the past, so they are rejected.
const maxNumericDate = 253402300799

// numericDate is an RFC 7519 NumericDate: seconds since the epoch, possibly
// fractional, between 1970 and the year 9999.
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("a date must be a number of seconds")
	}
	if !(f >= 0 && f <= maxNumericDate) { // also false for NaN
		return fmt.Errorf("date %g is out of range", f)
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// stringish decodes a claim that providers send either as a string or as an
// array of strings.
type stringish []string

func (s *stringish) UnmarshalJSON(b []byte) error {
	list, _, err := decodeStrings(b)
	*s = list
	return err
}

// decodeStrings reads a JSON string (one reports it) or an array of strings.
func decodeStrings(b []byte) (list []string, one bool, err error) {
	var single string
	if err := json.Unmarshal(b, &single); err == nil {
		return []string{single}, true, nil
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, false, fmt.Errorf("want a string or an array of strings: %w", err)
	}
	return list, false, nil
}

// audience is "aud": a string or an array, compared whole (never split).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s stringish
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	*a = audience(s)
	return nil
}

// scopeClaim is one scope claim. A string is a list separated by SP (U+0020)
// only, per RFC 6749 §3.3: a tab or U+00A0 is part of a token, so it cannot
// smuggle in a scope. Array entries are scopes as given, never split.
type scopeClaim []string

func (s *scopeClaim) UnmarshalJSON(b []byte) error {
	list, one, err := decodeStrings(b)
	if err != nil {
		return err
	}
	if one {
		list = strings.Split(list[0], " ")
	}
	*s = slices.DeleteFunc(list, isEmpty)
	return nil
}

func isEmpty(s string) bool { return s == "" }

// mergeScopes merges scope claims into one de-duplicated list.
func mergeScopes(claims ...scopeClaim) []string {
	var out []string
	for _, c := range claims {
		for _, s := range c {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
