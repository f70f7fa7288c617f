package main

import (
	"errors"
	"net/http"
	"sync/atomic"
)

// What run serves while it starts and once it is ready: /ready's checks,
// and the handler that swaps api.Starting for the router.

// readiness is the list of checks /ready runs: all must pass.
type readiness []func() error

// check is nil when every check passes, else every reason, one per line.
func (r readiness) check() error {
	var errs []error
	for _, f := range r {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// swapHandler serves the start-up handler until the API's replaces it.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }
func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}
