//go:build !cgo || purego

package decode

import "context"

// Built without libjpeg-turbo (tag purego or CGO_ENABLED=0): every format,
// JPEG included, goes through the pure-Go decoders.
const LibjpegTurbo = false

func decodeJPEGTurbo(ctx context.Context, data []byte, h Header, denom, maxScans int) (*RGB, error) {
	panic("unreachable: LibjpegTurbo is false")
}
