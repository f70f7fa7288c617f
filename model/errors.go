package model

import (
	"errors"

	"catsdogs/model/decode"
)

// The errors Classify returns, besides the caller's context ending. The HTTP
// layer maps each to a status and error code in one place (api/errors.go).
var (
	// The upload's fault: 4xx.
	ErrUnsupportedFormat = decode.ErrUnsupportedFormat // not an image we read: 415
	ErrCorruptImage      = decode.ErrCorruptImage      // a broken file of a known format: 422
	ErrImageTooLarge     = decode.ErrImageTooLarge     // over a size, shape, time or memory bound: 413

	// Load to shed: 503 with Retry-After.
	//
	// ErrBusy means every inference worker is taken and the wait queue is
	// full: queueing without bound would only grow latency and memory.
	ErrBusy = errors.New("server busy: inference queue is full")
	// ErrMemoryFull means other requests hold the memory budget right now.
	ErrMemoryFull = errors.New("server busy: the memory budget for uploads and decodes is in use")
)
