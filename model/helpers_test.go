package model

import (
	"context"
	"errors"
	"testing"

	"catsdogs/admission"
	"catsdogs/model/decode"
)

// repoRoot is the repository root seen from model/, where tests run.
const repoRoot = ".."

// testAdmission is admission as main builds it, with a budget no test here
// fills unless it means to, and queue waiting requests (0: the default).
func testAdmission(queue int) *admission.Controller {
	return admission.New(admission.Config{MemoryBudget: 1 << 30, QueueSize: queue})
}

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

// decodeImage is what Classify decodes from data: decode.Inspect, then
// decode.Pixels with the classifier's options.
func decodeImage(t testing.TB, c *Classifier, data []byte) *decode.RGB {
	t.Helper()
	h, err := decode.Inspect(data, c.decode)
	if err != nil {
		t.Fatal(err)
	}
	img, err := decode.Pixels(context.Background(), data, h, c.decode)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// classifyRGB classifies an already decoded image, skipping the decode and
// its bounds, to compare with Classify.
func (c *Classifier) classifyRGB(img *decode.RGB) (*Result, error) {
	release, err := c.adm.Admit(context.Background(), 1)
	if err != nil {
		return nil, err
	}
	defer release()
	r := &Result{Width: img.W, Height: img.H, DecodedWidth: img.W, DecodedHeight: img.H}
	c.batch.expect()
	in, err := c.preprocess(r, img)
	if err != nil {
		c.batch.abandon()
		return nil, err
	}
	defer c.putTensor(in)
	return c.infer(r, in)
}

// isClientError: the uploader's fault, a 4xx (Classify's errors.go).
func isClientError(err error) bool {
	return errors.Is(err, ErrUnsupportedFormat) || errors.Is(err, ErrCorruptImage) || errors.Is(err, ErrImageTooLarge)
}
