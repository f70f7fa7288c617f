// Package poll waits in tests for a condition that another goroutine will
// make true: it bounds events, not speed. The bound is generous (a loaded
// 2-core machine may be slow); it only turns a hang into a failure.
package poll

import (
	"testing"
	"time"
)

// Until polls cond every millisecond and fails the test if it does not hold
// within 10 s.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
