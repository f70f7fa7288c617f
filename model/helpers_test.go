package model

import (
	"context"
	"testing"
)

// repoRoot is the repository root seen from model/, where tests run.
const repoRoot = ".."

// occupy takes every admission slot of c, as requests in progress would,
// and returns what gives them back.
func occupy(t *testing.T, c *Classifier) (release func()) {
	t.Helper()
	for i := 0; i < c.Info.Admitted; i++ {
		if err := c.Limiter().Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for i := 0; i < c.Info.Admitted; i++ {
			c.Limiter().Release()
		}
	}
}
