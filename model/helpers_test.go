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
	return occupyN(t, c, c.Info.Admitted)
}

// occupyN takes n of c's admission slots, one image at a time.
func occupyN(t *testing.T, c *Classifier, n int) (release func()) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := c.adm.Limiter().Acquire(context.Background(), "", 1); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for i := 0; i < n; i++ {
			c.adm.Limiter().Release("", 1)
		}
	}
}
