package api

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"catsdogs/docs"

	"github.com/gin-gonic/gin"
)

// web holds the pages a person opens in a browser: the drop-an-image page
// (index.html), Swagger UI (docs.html) and ReDoc (redoc.html), our own
// scripts and styles under static/, and under static/vendor/ the Swagger UI
// and ReDoc bundles `make web-assets` unpacks from their npm packages. They
// are compiled in, so the binary serves them offline and nothing is loaded
// from elsewhere. A build without the vendor files still compiles; its docs
// pages then say how to get them.
//
//go:embed web
var web embed.FS

// pageCSP lets pages run only this origin's scripts: no inline script, no
// eval, nothing fetched or framed from elsewhere. Styles may be inline
// because Swagger UI and ReDoc set them from JavaScript; images may be
// data: (the vendors' icons) and blob: (the page's thumbnail of the
// user's image); ReDoc's search runs in a worker made from a blob.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// specWithServer serves the OpenAPI document with its server's URL (the
// committed file says "/", the instance serving it) made absolute: the
// scheme and host the client used. Importers such as Insomnium and Postman
// need an absolute base URL; Swagger UI and ReDoc, on the same origin, are
// unaffected. The document is cut once around that URL; each answer splices
// in the quoted base URL (a quoted string is valid JSON and YAML alike).
func specWithServer(ctype string, doc []byte, url, key, end string) gin.HandlerFunc {
	before, after, ok := bytes.Cut(doc, []byte(url))
	if !ok {
		panic("api: the OpenAPI document has no server " + url)
	}
	return func(c *gin.Context) {
		base := strconv.Quote(baseURL(c))
		out := make([]byte, 0, len(before)+len(key)+len(base)+len(end)+len(after))
		out = append(append(append(append(append(out, before...), key...), base...), end...), after...)
		c.Data(http.StatusOK, ctype, out)
	}
}

// baseURL is the scheme and host the client addressed. X-Forwarded-Proto
// counts only from a trusted proxy (one whose X-Forwarded-For gin believed).
func baseURL(c *gin.Context) string {
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	if p := c.GetHeader("X-Forwarded-Proto"); (p == "https" || p == "http") && c.ClientIP() != c.RemoteIP() {
		scheme = p
	}
	return scheme + "://" + c.Request.Host
}

// registerWeb adds the spec, the pages and their static files.
func registerWeb(r *gin.Engine, d Deps) {
	r.GET("/openapi.json", specWithServer("application/json", docs.OpenAPIJSON, `"url": "/"`, `"url": `, ""))
	r.GET("/openapi.yaml", specWithServer("application/yaml", docs.OpenAPIYAML, "url: /\n", "url: ", "\n"))

	auth := "on"
	if d.AuthDisabled {
		auth = "off"
	}
	persist := "false"
	if d.DocsPersistAuth {
		persist = "true"
	}
	index := page("web/index.html", "{{AUTH}}", auth)
	swagger := page("web/docs.html", "{{PERSIST}}", persist)
	redoc := page("web/redoc.html", "", "")
	if !vendored("swagger-ui-bundle.js", "swagger-ui.css") {
		swagger = missingAssets
	}
	if !vendored("redoc.standalone.js") {
		redoc = missingAssets
	}
	r.GET("/", withCSP, index)
	r.GET("/redoc", withCSP, redoc)
	// The seed served Swagger UI at /docs/index.html; /docs and /docs/ lead
	// there, and the Swagger 2.0 document's old address to the new one.
	toIndex := func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/docs/index.html") }
	r.GET("/docs", toIndex)
	r.GET("/docs/", toIndex)
	r.GET("/docs/index.html", withCSP, swagger)
	r.GET("/docs/doc.json", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/openapi.json") })

	static, _ := fs.Sub(web, "web/static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	r.GET("/static/*file", func(c *gin.Context) {
		if strings.HasSuffix(c.Request.URL.Path, "/") { // no directory listings
			abort(c, http.StatusNotFound, codeNotFound, "no such route; see /docs")
			return
		}
		// Versioned with the binary; an hour keeps reloads cheap without
		// pinning an old script after an upgrade for long.
		c.Header("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(c.Writer, c.Request)
	})
}

func withCSP(c *gin.Context) { c.Header("Content-Security-Policy", pageCSP) }

// page serves an embedded HTML file with one placeholder filled in once.
func page(name, placeholder, value string) gin.HandlerFunc {
	b, err := web.ReadFile(name)
	if err != nil {
		panic("api: embedded page missing: " + name) // a build error, not a runtime one
	}
	if placeholder != "" {
		b = []byte(strings.ReplaceAll(string(b), placeholder, value))
	}
	return func(c *gin.Context) { c.Data(http.StatusOK, "text/html; charset=utf-8", b) }
}

func vendored(names ...string) bool {
	for _, n := range names {
		if _, err := fs.Stat(web, "web/static/vendor/"+n); err != nil {
			return false
		}
	}
	return true
}

func missingAssets(c *gin.Context) {
	c.Data(http.StatusServiceUnavailable, "text/plain; charset=utf-8", []byte(
		"This binary was built without the Swagger UI and ReDoc files. Build it with `make build` "+
			"(it runs `make web-assets`), or fetch them with `make web-assets` and rebuild. "+
			"The API description itself is at /openapi.json.\n"))
}
