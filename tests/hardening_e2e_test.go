//go:build linux

// End-to-end tests for hostile uploads (issue 7): small files that used to
// crash, stall or balloon the service. Every bomb is generated here.
package tests

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"catsdogs/tests/bombs"
)

// A 20 KB 1 x 10,000,000 PNG is under MAX_IMAGE_PIXELS; it used to make the
// resampler ask for 20 GB and the Go runtime abort the whole process.
func TestHostileShapesAreRefused(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	for _, c := range []struct {
		name string
		w, h int
	}{
		{"1x10000000", 1, 10_000_000},
		{"10000000x1", 10_000_000, 1},
		{"1x1000000", 1, 1_000_000},
		{"side over 16384", 20_000, 2_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, tok, "strip.png", bombs.GreyPNG(c.w, c.h))
			wantError(t, resp, body, http.StatusRequestEntityTooLarge, "image_too_large")
		})
	}
	// A long but reasonable strip (32:1, the default bound) is still served.
	resp, body := upload(t, mainSrv, tok, "strip.png", bombs.GreyPNG(32, 1024))
	wantPrediction(t, resp, body)
	wantNoServerErrors(t, mainSrv)
}

// Progressive JPEG scan bombs: a 23 KB file of 883 tiny scans cost 1.7 s of
// decoding; 4000 repeated scans of a larger image cost 33 s. They are refused
// from their markers, before queueing or decoding.
func TestJPEGScanBombsAreRefusedFast(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	for _, c := range []struct {
		name   string
		data   []byte
		status int
		code   string
		reason string // says it was refused from the markers, not after a 33 s decode
	}{
		{"883 scans", bombs.ProgressiveJPEG(2048, 2048, 883, false), http.StatusUnprocessableEntity, "corrupt_image", "scans"},
		{"4000 repeated scans", bombs.ProgressiveJPEG(2048, 2048, 4000, true), http.StatusUnprocessableEntity, "corrupt_image", "scans"},
		{"200 scans of 16 MP", bombs.ProgressiveJPEG(4096, 4096, 200, false), http.StatusRequestEntityTooLarge, "image_too_large", "200 scans"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, tok, "bomb.jpg", c.data)
			wantError(t, resp, body, c.status, c.code)
			if !strings.Contains(string(body), c.reason) || strings.Contains(string(body), "took longer") {
				t.Errorf("not refused from the scan markers: %s", body)
			}
		})
	}
	// An ordinary progressive JPEG is still classified.
	resp, body := upload(t, mainSrv, tok, "progressive.jpg", bombs.ProgressiveJPEG(640, 480, 10, false))
	wantPrediction(t, resp, body)
	wantNoServerErrors(t, mainSrv)
}

// rssMB is a process's resident set size in MB, from /proc.
func rssMB(t *testing.T, s *server) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A 381 KB 7000x7000 16-bit RGBA PNG is under MAX_IMAGE_PIXELS but needs
// 539 MB to decode (8 bytes a pixel, plus RGB): it used to cost ~1.4 GB of
// RSS and 3 s. The memory budget refuses it from its header.
func TestSixteenBitPNGBombIsRefused(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	data := bombs.ZeroPNG(7000, 7000, 16, bombs.RGBA)
	before := rssMB(t, mainSrv)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := upload(t, mainSrv, tok, "bomb.png", data)
			wantError(t, resp, body, http.StatusRequestEntityTooLarge, "image_too_large")
			// Priced from the header, so refused before any pixel is decoded.
			if !strings.Contains(string(body), "MEMORY_BUDGET") {
				t.Errorf("detail does not name the setting: %s", body)
			}
		}()
	}
	wg.Wait()
	if grew := rssMB(t, mainSrv) - before; grew > 100 {
		t.Errorf("RSS grew by %.0f MB", grew)
	}
	// Within the budget, 16-bit PNGs are classified.
	resp, body := upload(t, mainSrv, tok, "small16.png", bombs.ZeroPNG(600, 400, 16, bombs.RGBA))
	wantPrediction(t, resp, body)
	wantNoServerErrors(t, mainSrv)
}

// stalledUpload opens a connection and sends an upload's headers, declaring
// a body of n bytes, and the first `send` bytes of its file, then stalls.
func stalledUpload(t *testing.T, s *server, n, send int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n"+
		"Content-Length: %d\r\n\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n", n)
	if _, err := conn.Write(bytes.Repeat([]byte{'x'}, send)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitBudget scrapes until the memory budget in use reads want (10 s at most).
func waitBudget(t *testing.T, s *server, what string, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		used := scrape(t, s.URL+"/metrics")["catsdogs_memory_budget_used_bytes"]
		if used == float64(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s hold %g bytes of the budget after 10 s, want %d", what, used, want)
		}
	}
}

// A body holds the memory budget for what it has sent, as it arrives: uploads
// that announce 2 MiB and stall hold 64 KiB each and everyone else is
// served; uploads that did send most of their bodies fill the budget, and
// the next upload is shed (503 + Retry-After) instead of growing memory
// (200 stalled 10 MB uploads once held 4.95 GB). Past MAX_CONNECTIONS new
// connections wait instead of being served.
func TestMemoryBudgetAndConnectionCap(t *testing.T) {
	const upload2MB, chunk = 2 << 20, 64 << 10
	srv, err := launch("budget", map[string]string{
		"AUTH_DISABLED": "true", "INFERENCE_WORKERS": "1", "MAX_UPLOAD_BYTES": strconv.Itoa(upload2MB),
		"MEMORY_BUDGET": strconv.Itoa(2*upload2MB + chunk/2), "MAX_CONNECTIONS": "3",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	if err := srv.waitReady(readyTimeout); err != nil {
		t.Fatal(err)
	}
	jpg := photo(t, "dog", 0)

	// Announced, not sent: one chunk each, and the budget stays open.
	c, d := stalledUpload(t, srv, upload2MB, 0), stalledUpload(t, srv, upload2MB, 0)
	waitBudget(t, srv, "two uploads that only announced 2 MiB", 2*chunk)
	resp, body := upload(t, srv, "", "dog.jpg", jpg)
	wantPrediction(t, resp, body)
	c.Close()
	d.Close()
	waitBudget(t, srv, "closed uploads", 0)

	// Sent 1.5 MiB each: their buffers have grown to 2 MiB each, the whole
	// budget but half a chunk, so the next upload cannot get its first one.
	a, b := stalledUpload(t, srv, upload2MB, 3<<19), stalledUpload(t, srv, upload2MB, 3<<19)
	defer a.Close()
	defer b.Close()
	waitBudget(t, srv, "two uploads that sent 1.5 MiB", 2*upload2MB)
	resp, body = upload(t, srv, "", "dog.jpg", jpg)
	wantError(t, resp, body, http.StatusServiceUnavailable, "busy")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	// A, B and one idle connection are the 3 allowed: a 4th waits.
	idle, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept it
	quick := &http.Client{Timeout: 700 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if r, err := quick.Get(srv.URL + "/health"); err == nil {
		r.Body.Close()
		t.Errorf("a 4th connection was served (status %d) with MAX_CONNECTIONS=3", r.StatusCode)
	}
	idle.Close()
	a.Close()
	b.Close()
	// With the stalled uploads gone, budget and connections are free again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body = upload(t, srv, "", "dog.jpg", jpg)
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantPrediction(t, resp, body)
}
