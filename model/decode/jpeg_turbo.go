//go:build cgo && !purego

package decode

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
	int stopped; // CD_STOP_* when the progress monitor gave up
	char msg[JMSG_LENGTH_MAX];
};

enum { CD_STOP_SCANS = 1, CD_STOP_CANCEL = 2 };

static void cd_error_exit(j_common_ptr c) {
	struct cd_err *e = (struct cd_err *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jmp, 1);
}

// Warnings whose data libjpeg replaces with zeros or misplaces (bad entropy
// codes, an invalid progression, data cut off by a marker) would feed the
// model garbage: fail instead. Metadata warnings (unknown JFIF version, bad
// ICC profile, stray bytes between markers) leave the pixels intact.
static void cd_emit(j_common_ptr c, int level) {
	struct cd_err *e = (struct cd_err *)c->err;
	if (level >= 0) return;
	switch (c->err->msg_code) {
	case JWRN_JPEG_EOF:
		e->truncated = 1;
		break;
	case JWRN_BOGUS_PROGRESSION:
	case JWRN_HUFF_BAD_CODE:
	case JWRN_ARITH_BAD_CODE:
	case JWRN_HIT_MARKER:
	case JWRN_MUST_RESYNC:
	case JWRN_NOT_SEQUENTIAL:
		cd_error_exit(c);
	}
}

// The progress monitor runs once per iMCU row of every pass (and per row of
// input while the scans of a progressive file are absorbed): it enforces the
// scan limit and stops the decode once Go sets *stop (context ended).
struct cd_progress {
	struct jpeg_progress_mgr pub;
	int max_scans;
	const int *stop;
};

static void cd_monitor(j_common_ptr c) {
	struct cd_progress *p = (struct cd_progress *)c->progress;
	struct cd_err *e = (struct cd_err *)c->err;
	if (p->max_scans > 0 && ((j_decompress_ptr)c)->input_scan_number > p->max_scans) {
		e->stopped = CD_STOP_SCANS;
		snprintf(e->msg, JMSG_LENGTH_MAX, "JPEG has more than %d scans", p->max_scans);
		longjmp(e->jmp, 1);
	}
	if (__atomic_load_n(p->stop, __ATOMIC_RELAXED)) {
		e->stopped = CD_STOP_CANCEL;
		strcpy(e->msg, "decode stopped");
		longjmp(e->jmp, 1);
	}
}

// cd_decode decodes JPEG bytes to packed RGB at scale 1/denom into buf,
// which the caller sized for an ow x oh output: a file whose output differs
// fails. Returns 0, or 1 with err_msg set.
static int cd_decode(const unsigned char *data, unsigned long size, int denom,
                     int max_scans, const int *stop,
                     unsigned char *buf, int ow, int oh, char *err_msg, int *stopped) {
	struct jpeg_decompress_struct cinfo;
	struct cd_err jerr;
	struct cd_progress prog;
	// volatile: it must survive the longjmp so the error path frees it.
	unsigned char *volatile row = NULL;
	memset(&jerr, 0, sizeof(jerr));
	cinfo.err = jpeg_std_error(&jerr.mgr);
	jerr.mgr.error_exit = cd_error_exit;
	jerr.mgr.emit_message = cd_emit;
	if (setjmp(jerr.jmp)) {
		strncpy(err_msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		*stopped = jerr.stopped;
		jpeg_destroy_decompress(&cinfo);
		free(row);
		return 1;
	}
	jpeg_create_decompress(&cinfo);
	memset(&prog, 0, sizeof(prog));
	prog.pub.progress_monitor = cd_monitor;
	prog.max_scans = max_scans;
	prog.stop = stop;
	cinfo.progress = &prog.pub;
	jpeg_mem_src(&cinfo, data, size);
	jpeg_read_header(&cinfo, TRUE);
	int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
	cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
	cinfo.scale_num = 1;
	cinfo.scale_denom = denom;
	// The output size before any scan is read (a progressive file's start
	// reads them all): a mismatch fails at once.
	jpeg_calc_output_dimensions(&cinfo);
	int w = cinfo.output_width, h = cinfo.output_height, n = cinfo.output_components;
	if (w != ow || h != oh) {
		snprintf(err_msg, JMSG_LENGTH_MAX, "decodes to %dx%d, its header said %dx%d", w, h, ow, oh);
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	jpeg_start_decompress(&cinfo);
	if ((int)cinfo.output_width != ow || (int)cinfo.output_height != oh) { // same parameters, same size: never
		strcpy(err_msg, "output size changed at start");
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	if (n != 3) row = malloc((size_t)w * n);
	if (n != 3 && !row) {
		strcpy(err_msg, "out of memory");
		jpeg_destroy_decompress(&cinfo);
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
		return 1;
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	return 0;
}
*/
import "C"

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// LibjpegTurbo reports that JPEGs decode through libjpeg-turbo with DCT scaling.
const LibjpegTurbo = true

// decodeJPEGTurbo decodes at DCT scale 1/denom (8, 4, 2 or 1; see
// jpegScaleDenom), so a 12 MP photo headed for a 224² tensor costs a 1/8-size
// decode instead of a full one. libjpeg's fancy upsampling and
// integer IDCT are the same Pillow uses, so full-size decodes match training.
// It gives up with errDecodeStopped soon after ctx ends, and refuses files of
// more than maxScans scans (a backstop to checkJPEGScans; 0: no limit). The
// pixels go straight into Go memory sized from h, the header Inspect read.
func decodeJPEGTurbo(ctx context.Context, data []byte, h Header, denom, maxScans int) (*RGB, error) {
	if len(data) == 0 || h.Width <= 0 || h.Height <= 0 {
		return nil, ErrCorruptImage
	}
	// libjpeg's output size at scale 1/denom: each side rounded up.
	img := &RGB{W: (h.Width + denom - 1) / denom, H: (h.Height + denom - 1) / denom}
	img.Pix = make([]uint8, img.W*img.H*3)
	// libjpeg's progress monitor polls this flag; Go memory is fine to pass
	// for the duration of the call, and both sides access it atomically.
	stop := new(C.int)
	defer context.AfterFunc(ctx, func() { atomic.StoreInt32((*int32)(unsafe.Pointer(stop)), 1) })()
	var stopped C.int
	var msg [C.JMSG_LENGTH_MAX]C.char
	rc := C.cd_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(denom), C.int(maxScans), stop,
		(*C.uchar)(unsafe.Pointer(&img.Pix[0])), C.int(img.W), C.int(img.H), &msg[0], &stopped)
	if rc != 0 {
		if stopped == C.CD_STOP_CANCEL {
			return nil, errDecodeStopped
		}
		return nil, fmt.Errorf("%w: %s", ErrCorruptImage, C.GoString(&msg[0]))
	}
	return img, nil
}
