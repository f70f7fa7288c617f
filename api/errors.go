package api

import (
	"github.com/gin-gonic/gin"
)

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	// Error is a stable machine-readable code, e.g. "file_missing".
	Error string `json:"error" example:"file_missing"`
	// Detail explains what went wrong and how to fix it.
	Detail string `json:"detail" example:"multipart field \"file\" is required"`
}

// Error codes, one per distinct client action.
const (
	codeFileMissing       = "file_missing"
	codeFileEmpty         = "file_empty"
	codeNotMultipart      = "unsupported_media_type"
	codeUnsupportedImage  = "unsupported_image"
	codeCorruptImage      = "corrupt_image"
	codeTooLarge          = "payload_too_large"
	codeImageTooLarge     = "image_too_large"
	codeBadRequest        = "bad_request"
	codeInvalidToken      = "invalid_token"
	codeInvalidRequest    = "invalid_request"
	codeInsufficientScope = "insufficient_scope"
	codeAuthUnavailable   = "auth_unavailable"
	codeBusy              = "busy"
	codeNotFound          = "not_found"
	codeMethodNotAllowed  = "method_not_allowed"
	codeInternal          = "internal_error"
)

// errorCodeKey is where abort leaves the code for the request log.
const errorCodeKey = "error_code"

func abort(c *gin.Context, status int, code, detail string) {
	c.Set(errorCodeKey, code)
	c.AbortWithStatusJSON(status, ErrorResponse{Error: code, Detail: detail})
}
