package auth

import (
	"encoding/json"
	"fmt"
)

// stringish decodes a claim that providers send either as a string or as an
// array of strings ("scp", "aud", "permissions"). For scopes, every entry is
// later split on spaces (ParseScopes); "aud" entries are compared whole.
type stringish []string

func (s *stringish) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringish{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or an array of strings: %w", err)
	}
	*s = many
	return nil
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
