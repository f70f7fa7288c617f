//go:build !cgo || purego

package preprocess

// Without cgo the passes are the Go ones (resample.go).

func hpass(out, in []uint8, stride, rows int, c *coeffs) { hpassGo(out, in, stride, rows, c) }

func vpass(out, mid []uint8, stride, ch int, c *coeffs) { vpassGo(out, mid, stride, ch, c) }
