// Package issuer is the one fake OpenID Connect provider of every test (the
// auth and api unit tests, the end-to-end tests and make bench). It serves a
// discovery document and a JWKS over real HTTP on loopback and mints signed
// access tokens, so the service under test validates tokens exactly as it
// would against a real identity provider; faults are injected on demand: an
// outage, an error status, a hanging or malformed JWKS, rotated, removed or
// foreign keys, another issuer in discovery.
package issuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultAudience is the "aud" of tokens unless the claims say otherwise.
const DefaultAudience = "catsdogs-api"

// DefaultScope is the "scope" of tokens unless the claims say otherwise.
const DefaultScope = "get::prediction"

// Issuer is a running test identity provider.
type Issuer struct {
	URL     string // base URL and "iss" value, e.g. http://127.0.0.1:41234 (no trailing slash)
	JWKSURL string // URL + "/jwks"

	srv        *http.Server
	fetches    atomic.Int64
	discovered atomic.Int64
	down       atomic.Bool  // /jwks and discovery answer 503
	jwksStatus atomic.Int64 // /jwks answers this status when not 0
	faults     atomic.Pointer[faults]

	mu        sync.Mutex
	published []jose.JSONWebKey // public keys served at /jwks
	signing   jose.JSONWebKey   // current RSA private key for Token
	ec        jose.JSONWebKey   // EC private key for TokenES256
	rogue     jose.JSONWebKey   // RSA private key that is never published
	rotations int
}

// faults are the JWKS and discovery oddities set by the Set methods.
type faults struct {
	cacheControl string        // of /jwks; "" none
	jwksBody     string        // served instead of the key set; "" none
	issuer       string        // "issuer" of the discovery document; "" URL
	hang         chan struct{} // /jwks waits until it is closed; nil none
}

// setFault changes one fault.
func (i *Issuer) setFault(f func(*faults)) {
	for {
		old := i.faults.Load()
		n := *old
		f(&n)
		if i.faults.CompareAndSwap(old, &n) {
			return
		}
	}
}

// Start generates keys and serves the issuer on 127.0.0.1 at a free port.
func Start() (*Issuer, error) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rogueKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	i := &Issuer{
		URL:     "http://" + ln.Addr().String(),
		signing: jose.JSONWebKey{Key: rsaKey, KeyID: "rsa-1", Algorithm: string(jose.RS256), Use: "sig"},
		ec:      jose.JSONWebKey{Key: ecKey, KeyID: "ec-1", Algorithm: string(jose.ES256), Use: "sig"},
		rogue:   jose.JSONWebKey{Key: rogueKey, KeyID: "rogue", Algorithm: string(jose.RS256), Use: "sig"},
	}
	i.JWKSURL = i.URL + "/jwks"
	i.published = []jose.JSONWebKey{i.signing.Public(), i.ec.Public()}

	mux := http.NewServeMux()
	i.faults.Store(&faults{})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		i.discovered.Add(1)
		if i.down.Load() {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		iss := i.faults.Load().issuer
		if iss == "" {
			iss = i.URL
		}
		writeJSON(w, map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              i.JWKSURL,
			"authorization_endpoint":                i.URL + "/authorize",
			"token_endpoint":                        i.URL + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		i.fetches.Add(1)
		f := i.faults.Load()
		if f.hang != nil {
			<-f.hang
		}
		if i.down.Load() {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		if f.cacheControl != "" {
			w.Header().Set("Cache-Control", f.cacheControl)
		}
		if code := i.jwksStatus.Load(); code != 0 {
			http.Error(w, "JWKS failing", int(code))
			return
		}
		if f.jwksBody != "" {
			_, _ = io.WriteString(w, f.jwksBody)
			return
		}
		i.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), i.published...)}
		i.mu.Unlock()
		writeJSON(w, set)
	})
	i.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = i.srv.Serve(ln) }()
	return i, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// TB is what New needs of a testing.TB. Naming it here keeps the testing
// package out of make dev's binary (tools/devissuer), which uses Start.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// New starts an issuer for one test and stops it when the test ends.
func New(tb TB) *Issuer {
	tb.Helper()
	i, err := Start()
	if err != nil {
		tb.Fatalf("starting the test issuer: %v", err)
	}
	tb.Cleanup(i.Close)
	return i
}

// Close stops the HTTP server.
func (i *Issuer) Close() { _ = i.srv.Close() }

// JWKSFetches is how many times /jwks has been requested.
func (i *Issuer) JWKSFetches() int { return int(i.fetches.Load()) }

// SetDown makes /jwks and the discovery document answer 503 (true) or serve
// again (false), as an IdP outage would.
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

// DiscoveryFetches is how many times the discovery document was requested.
func (i *Issuer) DiscoveryFetches() int { return int(i.discovered.Load()) }

// SetJWKSStatus makes /jwks alone answer this HTTP status; 0 serves keys.
func (i *Issuer) SetJWKSStatus(code int) { i.jwksStatus.Store(int64(code)) }

// SetJWKSBody serves body at /jwks instead of the key set; "" stops that.
func (i *Issuer) SetJWKSBody(body string) { i.setFault(func(f *faults) { f.jwksBody = body }) }

// SetDiscoveredIssuer makes the discovery document name another issuer
// ("" names URL again), as a misconfigured or hostile provider would.
func (i *Issuer) SetDiscoveredIssuer(iss string) { i.setFault(func(f *faults) { f.issuer = iss }) }

// Hang makes /jwks requests wait until release is called.
func (i *Issuer) Hang() (release func()) {
	ch := make(chan struct{})
	i.setFault(func(f *faults) { f.hang = ch })
	var once sync.Once
	return func() {
		once.Do(func() {
			i.setFault(func(f *faults) { f.hang = nil })
			close(ch)
		})
	}
}

// SetCacheControl sends this Cache-Control header with the JWKS; "" none
// (the default).
func (i *Issuer) SetCacheControl(v string) { i.setFault(func(f *faults) { f.cacheControl = v }) }

// SetCacheMaxAge sends "Cache-Control: public, max-age=<d>" with the JWKS;
// a negative d sends no Cache-Control (the default).
func (i *Issuer) SetCacheMaxAge(d time.Duration) {
	if d < 0 {
		i.SetCacheControl("")
	} else {
		i.SetCacheControl(fmt.Sprintf("public, max-age=%d", int64(d/time.Second)))
	}
}

// Publish replaces the JWKS with keys (public keys, or any JSON Web Keys a
// test wants served: other algorithms, "use": "enc"). Token keeps signing
// with the current key.
func (i *Issuer) Publish(keys ...jose.JSONWebKey) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = append([]jose.JSONWebKey(nil), keys...)
}

// SigningKeyID is the kid Token signs with now.
func (i *Issuer) SigningKeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.signing.KeyID
}

// Unpublish removes the key with this kid from the JWKS (a retired key).
// Token keeps signing with the current key even if that is the one removed.
func (i *Issuer) Unpublish(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = slices.DeleteFunc(i.published, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
}

// Token signs claims with the current published RSA key (RS256). Defaults:
// iss=URL, aud=DefaultAudience, sub="test-user", iat=now, exp=now+1h,
// scope=DefaultScope. Entries in claims override them; a nil value removes
// that claim.
func (i *Issuer) Token(claims map[string]any) string {
	i.mu.Lock()
	key := i.signing
	i.mu.Unlock()
	return i.sign(jose.RS256, key, claims)
}

// TokenES256 signs with the published EC P-256 key (kid "ec-1").
func (i *Issuer) TokenES256(claims map[string]any) string {
	return i.sign(jose.ES256, i.ec, claims)
}

// TokenUnpublishedKey signs with an RSA key that is not in the JWKS (kid "rogue").
func (i *Issuer) TokenUnpublishedKey(claims map[string]any) string {
	return i.sign(jose.RS256, i.rogue, claims)
}

// TokenHS256 signs with HMAC-SHA256 under secret, claiming the kid of the
// published RSA key: the classic algorithm-confusion attempt. Services must
// reject it.
func (i *Issuer) TokenHS256(claims map[string]any, secret []byte) string {
	i.mu.Lock()
	kid := i.signing.KeyID
	i.mu.Unlock()
	return i.sign(jose.HS256, jose.JSONWebKey{Key: secret, KeyID: kid}, claims)
}

// Rotate generates a new RSA key (kid rsa-2, rsa-3, ...), publishes it next to
// the old ones and signs later Token calls with it.
func (i *Issuer) Rotate() {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("issuer: generating RSA key: %v", err))
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rotations++
	i.signing = jose.JSONWebKey{Key: k, KeyID: fmt.Sprintf("rsa-%d", i.rotations+1), Algorithm: string(jose.RS256), Use: "sig"}
	i.published = append(i.published, i.signing.Public())
}

// claims returns the default claims merged with overrides, as Token uses them.
func (i *Issuer) claims(overrides map[string]any) map[string]any {
	return Claims(i.URL, overrides)
}

// Claims is a valid claim set for tokens of issuer iss: aud=DefaultAudience,
// sub="test-user", iat=now, exp=now+1h, scope=DefaultScope, then overrides
// (a nil value removes that claim). Sign it for tokens from other keys.
func Claims(iss string, overrides map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":   iss,
		"aud":   DefaultAudience,
		"sub":   "test-user",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"scope": DefaultScope,
	}
	return override(c, overrides)
}

// override sets each claim of overrides in c, or removes it if nil.
func override(c, overrides map[string]any) map[string]any {
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (i *Issuer) sign(alg jose.SignatureAlgorithm, key jose.JSONWebKey, overrides map[string]any) string {
	return Sign(alg, key.Key, key.KeyID, i.claims(overrides))
}

// Tamper rewrites claims in tok's payload (a nil value removes one) and
// keeps the signature, which then no longer matches.
func Tamper(tok string, claims map[string]any) string {
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	b, err := json.Marshal(override(c, claims))
	if err != nil {
		panic(fmt.Sprintf("issuer: encoding claims: %v", err))
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// Sign makes a compact JWS of claims as they are, signed with key under alg
// and naming kid ("" names none): for tokens no honest issuer would make.
func Sign(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("issuer: encoding claims: %v", err))
	}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(fmt.Sprintf("issuer: %s signer: %v", alg, err))
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(fmt.Sprintf("issuer: signing: %v", err))
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		panic(fmt.Sprintf("issuer: serializing: %v", err))
	}
	return tok
}
