package testmodel

import "math"

// Int8LogitTol bounds how far quantization may move a model's logits
// (centred log-probabilities) from its fp32 twin's: make quantize's copy of
// the default model moves them by at most 0.29 on the parity photos
// (2026-12-06), a near tie of 0.46 / 0.54 included.
const Int8LogitTol = 0.5

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
