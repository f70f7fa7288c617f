//go:build !cgo || purego

package model

// Built without libjpeg-turbo (tag purego or CGO_ENABLED=0): every format,
// JPEG included, goes through the pure-Go decoders.
const fastJPEG = false

func decodeJPEGTurbo(data []byte, minW, minH int) (*RGB, error) {
	panic("unreachable: fastJPEG is false")
}
