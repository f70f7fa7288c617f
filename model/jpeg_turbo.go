//go:build cgo && !purego

package model

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

// libjpeg reports errors by calling error_exit, which by default exits the
// process: jump back instead and fail the decode. Truncated data is only a
// warning to libjpeg (it pads with grey); we treat it as corrupt.
struct cd_err {
	struct jpeg_error_mgr mgr;
	jmp_buf jmp;
	int truncated;
	char msg[JMSG_LENGTH_MAX];
};

static void cd_error_exit(j_common_ptr c) {
	struct cd_err *e = (struct cd_err *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jmp, 1);
}

static void cd_emit(j_common_ptr c, int level) {
	struct cd_err *e = (struct cd_err *)c->err;
	if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

// cd_decode decodes JPEG bytes to packed RGB at the smallest scale 1/8..1/1
// whose output is at least min_w x min_h. On success *out is malloc'd and must
// be freed by the caller. Returns 0, or 1 with err_msg set.
static int cd_decode(const unsigned char *data, unsigned long size, int min_w, int min_h,
                     unsigned char **out, int *ow, int *oh, char *err_msg) {
	struct jpeg_decompress_struct cinfo;
	struct cd_err jerr;
	// volatile: both must survive the longjmp so the error path frees them.
	unsigned char *volatile buf = NULL;
	unsigned char *volatile row = NULL;
	memset(&jerr, 0, sizeof(jerr));
	cinfo.err = jpeg_std_error(&jerr.mgr);
	jerr.mgr.error_exit = cd_error_exit;
	jerr.mgr.emit_message = cd_emit;
	if (setjmp(jerr.jmp)) {
		strncpy(err_msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		jpeg_destroy_decompress(&cinfo);
		free(buf);
		free(row);
		return 1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, data, size);
	jpeg_read_header(&cinfo, TRUE);
	int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
	cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
	cinfo.scale_num = 1;
	cinfo.scale_denom = 1;
	for (int d = 8; d > 1; d /= 2) {
		long w = ((long)cinfo.image_width + d - 1) / d, h = ((long)cinfo.image_height + d - 1) / d;
		if (min_w > 0 && min_h > 0 && w >= min_w && h >= min_h) { cinfo.scale_denom = d; break; }
	}
	jpeg_start_decompress(&cinfo);
	int w = cinfo.output_width, h = cinfo.output_height, n = cinfo.output_components;
	buf = malloc((size_t)w * h * 3);
	if (n != 3) row = malloc((size_t)w * n);
	if (!buf || (n != 3 && !row)) {
		strcpy(err_msg, "out of memory");
		jpeg_destroy_decompress(&cinfo);
		free(buf);
		free(row);
		return 1;
	}
	while (cinfo.output_scanline < cinfo.output_height) {
		unsigned char *dst = buf + (size_t)cinfo.output_scanline * w * 3;
		JSAMPROW rp = n == 3 ? dst : (JSAMPROW)row;
		jpeg_read_scanlines(&cinfo, &rp, 1);
		if (n == 4) {
			// Adobe CMYK JPEGs store inverted values; R = C*K/255 on inverted data.
			for (int x = 0; x < w; x++) {
				int k = row[4*x+3];
				dst[3*x] = (row[4*x] * k + 127) / 255;
				dst[3*x+1] = (row[4*x+1] * k + 127) / 255;
				dst[3*x+2] = (row[4*x+2] * k + 127) / 255;
			}
		}
		if (jerr.truncated) break;
	}
	free(row);
	row = NULL;
	if (jerr.truncated) {
		strcpy(err_msg, "premature end of JPEG data");
		jpeg_destroy_decompress(&cinfo);
		free(buf);
		return 1;
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	*out = buf; *ow = w; *oh = h;
	return 0;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// fastJPEG reports that JPEGs decode through libjpeg-turbo with DCT scaling.
const fastJPEG = true

// decodeJPEGTurbo decodes at the smallest DCT scale (1/8, 1/4, 1/2, 1) that is
// still at least minW x minH, so a 12 MP photo headed for a 224² tensor costs
// a 1/8-size decode instead of a full one. libjpeg's fancy upsampling and
// integer IDCT are the same Pillow uses, so full-size decodes match training.
func decodeJPEGTurbo(data []byte, minW, minH int) (*RGB, error) {
	if len(data) == 0 {
		return nil, ErrCorruptImage
	}
	var out *C.uchar
	var w, h C.int
	var msg [C.JMSG_LENGTH_MAX]C.char
	rc := C.cd_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(minW), C.int(minH),
		&out, &w, &h, &msg[0])
	if rc != 0 {
		return nil, fmt.Errorf("%w: %s", ErrCorruptImage, C.GoString(&msg[0]))
	}
	defer C.free(unsafe.Pointer(out))
	n := int(w) * int(h) * 3
	img := &RGB{W: int(w), H: int(h), Pix: make([]uint8, n)}
	copy(img.Pix, unsafe.Slice((*uint8)(unsafe.Pointer(out)), n))
	return img, nil
}
