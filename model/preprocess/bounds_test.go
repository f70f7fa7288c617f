package preprocess

import (
	"testing"

	"catsdogs/model/decode"
	"catsdogs/tests/bombs"
	"catsdogs/tests/testspec"
)

// The resampler must size its coefficient tables and scratch rows for the
// crop window only. Before, a 1 x 50,000 image headed for a 128-px centre crop
// allocated tables for all 7.2 million rows of the scaled image (~200 MB);
// at 1 x 10,000,000 the same arithmetic asked for 20 GB and killed the process.
func TestPreprocessAllocatesOnlyForTheCropWindow(t *testing.T) {
	p := New(testspec.ImageNet(128))
	out := make([]float32, p.TensorLen())
	for _, src := range []*decode.RGB{unitSolid(1, 50_000, [3]uint8{9, 99, 199}), unitSolid(50_000, 1, [3]uint8{9, 99, 199})} {
		p.Fill(out, src) // warm the scratch pool
		grew := bombs.Allocated(func() { p.Fill(out, src) })
		// The window is 128x128: coefficients for 128 outputs per axis and a
		// few source rows. 1 MB leaves room for the pool, not for the long side.
		if grew > 1<<20 {
			t.Errorf("%dx%d: Fill allocated %d bytes", src.W, src.H, grew)
		}
		// A constant image stays constant, so the window was computed right.
		want := fillTensor(testspec.ImageNet(128), unitSolid(128, 128, [3]uint8{9, 99, 199}))
		if m, _ := testspec.TensorDiff(out, want); m != 0 {
			t.Errorf("%dx%d: tensor differs from a constant image's", src.W, src.H)
		}
	}
}
