// Package testspec holds the preprocessing specs tests start from, and how
// they compare the tensors those specs make.
package testspec

import (
	"math"

	"catsdogs/model/spec"
)

// ImageNet is the preprocessing model/training exports, at a square input
// size: shorter side to size, centre crop, ImageNet mean and std, NCHW RGB,
// logits.
func ImageNet(size int) spec.Spec {
	return spec.Spec{
		Labels: []string{"Cat", "Dog", "Other"}, Layout: spec.LayoutNCHW, Width: size, Height: size,
		Resize: spec.ResizeCenterCrop, ResizeShorter: size, ChannelOrder: spec.OrderRGB, PixelScale: 1.0 / 255,
		Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}, Output: spec.OutputLogits,
	}
}

// Raw leaves pixel values untouched (value = pixel), NHWC RGB, so a tensor
// can be read back as bytes.
func Raw(w, h int, resize string) spec.Spec {
	return spec.Spec{
		Labels: []string{"a", "b", "c"}, Layout: spec.LayoutNHWC, Width: w, Height: h, Resize: resize,
		ResizeShorter: max(w, h), ChannelOrder: spec.OrderRGB, PixelScale: 1, Std: [3]float32{1, 1, 1},
		Output: spec.OutputLogits,
	}
}

// TensorDiff is the mean and max absolute difference of two tensors.
func TensorDiff(a, b []float32) (mean, maxd float64) {
	var sum float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		sum += d
		maxd = math.Max(maxd, d)
	}
	return sum / float64(len(a)), maxd
}
