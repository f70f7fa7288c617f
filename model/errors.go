package model

import (
	"catsdogs/model/decode"
)

// The errors Classify returns, besides admission's refusals
// (admission.ErrBusy, admission.ErrMemoryFull: 503 with Retry-After) and
// the caller's context ending. The HTTP layer maps each to a status and
// error code in one place (api/errors.go).
var (
	// The upload's fault: 4xx.
	ErrUnsupportedFormat = decode.ErrUnsupportedFormat // not an image we read: 415
	ErrCorruptImage      = decode.ErrCorruptImage      // a broken file of a known format: 422
	ErrImageTooLarge     = decode.ErrImageTooLarge     // over a size, shape, time or memory bound: 413
)
