package testmodel

import "math"

// Int8LogitTol bounds how far quantization may move a model's logits
// (centred log-probabilities) from its fp32 twin's. On the parity photos
// make quantize's copy of the default model moves them by at most 0.31
// with libjpeg-turbo's pixels and 0.74 with Go's decoder (-tags purego), both
// on the near tie (0.46 / 0.54), whose label stays. The model divides its
// logits by T = 0.384, which multiplies quantization's error by 2.6: 1.0
// here is 0.38 before the temperature.
const Int8LogitTol = 1.0

// LogitDistance is the largest difference between the centred
// log-probabilities (the logits up to a constant) of two distributions.
func LogitDistance(p, q []float64) float64 {
	a, b := centredLog(p), centredLog(q)
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

func centredLog(p []float64) []float64 {
	out := make([]float64, len(p))
	mean := 0.0
	for i, v := range p {
		out[i] = math.Log(math.Max(v, 1e-12))
		mean += out[i] / float64(len(p))
	}
	for i := range out {
		out[i] -= mean
	}
	return out
}

// Argmax is the index of v's largest value (the first, on ties).
func Argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
