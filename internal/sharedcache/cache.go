// Package sharedcache is a test double for a shared HTTP cache, such as a CDN
// or a reverse proxy, that follows RFC 9111 ("HTTP Caching").
//
// It exists so that tests can put an in-process cache in front of a Gin app
// and prove that the cache can never hand one user's session cookie or page to
// another user. It is deliberately as permissive as RFC 9111 allows a shared
// cache to be: in particular a response that carries Set-Cookie is stored and
// replayed to later visitors whenever nothing in the response forbids it, as
// many CDNs do. Only no-store and private (in the response) keep a response
// out of a shared cache; no-cache and max-age=0 do not keep its Set-Cookie
// from another user, because a 304 Not Modified from the origin lets the cache
// serve the stored response, cookie included.
//
// What the Cache does, with the section of RFC 9111 that asks for it:
//
//   - Only responses to GET and HEAD are stored (§3). A HEAD request is served
//     from a fresh stored GET response, without its body; a HEAD response is
//     stored too but only ever serves HEAD requests.
//   - A response is stored only if its status is final and understood (206 and
//     304 are not, nor is any code when must-understand is present unless
//     net/http knows it); the response has no no-store (ignored with
//     must-understand, §5.2.2.3); no unqualified private (§5.2.2.7); the
//     request has no no-store (§5.2.1.5); a request with Authorization gets a
//     response with public, s-maxage or must-revalidate (§3.5); and the
//     response has public, Expires, max-age, s-maxage or a heuristically
//     cacheable status code (§3).
//   - private="Field, ..." stores the response without the listed fields
//     (§5.2.2.7).
//   - Freshness lifetime (§4.2.1): s-maxage, else max-age, else Expires minus
//     Date; an invalid or repeated value counts as already stale. Without any
//     of them, a response with a heuristically cacheable status (RFC 9110
//     §15.1) or public gets Cache.HeuristicTTL (§4.2.2).
//   - Age (§4.2.3) is computed from Date, Age and the request and response
//     times, and every reused response carries an Age header (§4). A response
//     from the origin without Date gets one (RFC 9110 §6.6.1).
//   - Vary (§4.1): a stored response is used only for a request whose values
//     of every field named in its Vary (names case-insensitive) match those of
//     the request that stored it, after trimming whitespace and combining
//     field lines; Vary: * never matches. Of several matching responses the
//     one stored last is used. Storing a response replaces those the request
//     would have selected.
//   - A stored response is reused without contacting the origin only while it
//     is fresh, the response has no unqualified no-cache (§5.2.2.4), and the
//     request has neither no-cache (§5.2.1.4) nor a max-age its age exceeds
//     (§5.2.1.1). With only-if-cached in the request and nothing reusable,
//     the Cache answers 504 (§5.2.1.7).
//   - no-cache="Field, ...": a response reused without revalidation is sent
//     without the listed fields; after a successful revalidation they are
//     sent (§5.2.2.4).
//   - Otherwise, a GET whose stored response has an ETag or Last-Modified,
//     and whose request is not itself conditional, is revalidated: the
//     client's request is sent to the origin with If-None-Match and
//     If-Modified-Since (§4.3.1); a 304 updates the stored header fields from
//     the 304's (§3.2, §4.3.3) and the updated stored response is sent.
//   - A non-error response to an unsafe method (POST, PUT, DELETE, ...)
//     removes the stored responses for the target URI and for the same-origin
//     URIs in its Location and Content-Location (§4.4).
//
// Left out, on purpose: serving stale responses (max-stale,
// stale-while-revalidate, stale-if-error; never done, which is always
// allowed), min-fresh, answering a client's own conditional request with a
// 304 from the store (§4.3.2, a SHOULD: the stored 200 is sent instead),
// freshening stored responses from a HEAD or from the origin's 304 to a
// client's conditional request (§4.3.4, §4.3.5), combining partial content,
// the Last-Modified heuristic (HeuristicTTL is used instead, as a CDN's
// default TTL would), removing Connection-listed fields (§3.1), Pragma,
// trailers, collapsing concurrent requests, and any bound on the store's size.
package sharedcache

import (
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StatusHeader is the response header field in which the Cache says, as many
// CDNs do, how it answered: "HIT" (a stored response, the origin was not
// contacted), "REVALIDATED" (a stored response, after the origin answered a
// conditional request with 304 Not Modified) or "MISS" (the origin's own
// response).
const StatusHeader = "X-Cache"

// Values of StatusHeader.
const (
	Hit         = "HIT"
	Revalidated = "REVALIDATED"
	Miss        = "MISS"
)

// Cache is an http.Handler that serves from its store what RFC 9111 lets a
// shared cache serve, and forwards the rest to Origin. See the package
// documentation for the rules it follows.
//
// The zero value, with Origin set, is ready to use; a Cache must not be copied
// after first use. It is safe for concurrent use; concurrent requests for the
// same resource are all forwarded, not collapsed.
type Cache struct {
	// Origin answers the requests the Cache cannot answer from its store.
	// It must not be nil.
	Origin http.Handler

	// HeuristicTTL, if > 0, is the freshness lifetime given to a response
	// that has no explicit expiry (no s-maxage, max-age or Expires) but a
	// heuristically cacheable status code or the public directive (RFC 9111
	// §4.2.2), as a CDN's default TTL would. 0 means no heuristic freshness:
	// such a response can still be stored and revalidated.
	HeuristicTTL time.Duration

	// Now tells the time; nil means time.Now. Tests set it to move time
	// forward and expire stored responses.
	Now func() time.Time

	mu                   sync.Mutex
	entries              map[string][]*entry // by primary key; oldest first
	hits, misses, stores int
}

// Stats returns how many requests were answered from the store (hits: the
// origin was not contacted, or answered 304 to the Cache's revalidation), how
// many were answered with the origin's own response (misses, including every
// method other than GET and HEAD, and 504s for only-if-cached), and how many
// origin responses were stored (an update after a 304 is not counted).
func (c *Cache) Stats() (hits, misses, stores int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, c.stores
}

// response is a complete response as received from the origin or stored.
type response struct {
	status int
	header http.Header
	body   []byte
	// requestTime and responseTime are the request_time and response_time of
	// RFC 9111 §4.2.3: when the request was sent and the response received.
	requestTime, responseTime time.Time
}

// entry is a stored response. It is never modified once stored: an update
// replaces it.
type entry struct {
	response
	key      string     // primary cache key (§4): method and target URI
	cc       directives // the response's Cache-Control
	varyStar bool       // Vary: * (never matches)
	vary     map[string]fieldValue
}

// fieldValue is a request's normalised value of one field named in Vary.
type fieldValue struct {
	value   string
	present bool
}

// ServeHTTP answers r from the store if RFC 9111 allows it, or else from
// Origin, storing Origin's response if RFC 9111 allows it.
func (c *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		res := c.fetch(r)
		if !safeMethod(r.Method) && res.status >= 200 && res.status < 400 {
			c.invalidate(r, res.header)
		}
		c.send(w, r, res.status, res.header.Clone(), res.body, Miss, -1, &c.misses)
		return
	}
	reqCC := parseCacheControl(r.Header.Values("Cache-Control"))
	now := c.now()

	// §4: reuse a fresh stored response. A HEAD can use a GET's response.
	var candidates []*entry
	if r.Method == http.MethodHead {
		candidates = append(candidates, c.lookup(primaryKey(http.MethodGet, r), r))
	}
	candidates = append(candidates, c.lookup(primaryKey(r.Method, r), r))
	for _, e := range candidates {
		if e == nil || !c.reusable(e, reqCC, now) {
			continue
		}
		h := e.header.Clone()
		if _, names := e.cc.fields("no-cache"); len(names) > 0 {
			for _, f := range names {
				h.Del(f) // §5.2.2.4: not without successful revalidation
			}
		}
		c.send(w, r, e.status, h, e.body, Hit, e.currentAge(now), &c.hits)
		return
	}

	if reqCC.has("only-if-cached") { // §5.2.1.7
		c.send(w, r, http.StatusGatewayTimeout, http.Header{}, nil, Miss, -1, &c.misses)
		return
	}

	// §4.3.1: validate the stored response rather than replace it.
	if e := candidates[len(candidates)-1]; e != nil && r.Method == http.MethodGet && !conditional(r) &&
		(e.header.Get("ETag") != "" || e.header.Get("Last-Modified") != "") {
		cr := r.Clone(r.Context())
		if v := e.header.Get("ETag"); v != "" {
			cr.Header.Set("If-None-Match", v)
		}
		if v := e.header.Get("Last-Modified"); v != "" {
			cr.Header.Set("If-Modified-Since", v)
		}
		res := c.fetch(cr)
		if res.status == http.StatusNotModified && sameValidators(e.header, res.header) {
			u := c.freshen(e, r, res)
			c.send(w, r, u.status, u.header.Clone(), u.body, Revalidated, u.currentAge(c.now()), &c.hits)
			return
		}
		if res.status != http.StatusNotModified {
			c.store(r, reqCC, res)
			c.send(w, r, res.status, res.header.Clone(), res.body, Miss, -1, &c.misses)
			return
		}
		// A 304 for some other representation: ask again, unconditionally.
	}

	res := c.fetch(r)
	c.store(r, reqCC, res)
	c.send(w, r, res.status, res.header.Clone(), res.body, Miss, -1, &c.misses)
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// fetch sends r to the origin and records its complete response.
func (c *Cache) fetch(r *http.Request) response {
	reqTime := c.now()
	rec := httptest.NewRecorder()
	c.Origin.ServeHTTP(rec, r)
	res := response{requestTime: reqTime, responseTime: c.now()}
	result := rec.Result()
	res.status = result.StatusCode
	res.header = result.Header.Clone()
	if res.header == nil {
		res.header = http.Header{}
	}
	if r.Method != http.MethodHead {
		res.body = append([]byte(nil), rec.Body.Bytes()...)
	}
	if res.header.Get("Date") == "" { // RFC 9110 §6.6.1
		res.header.Set("Date", res.responseTime.UTC().Format(http.TimeFormat))
	}
	return res
}

// send writes a response to the client, counting it in *counter. h is
// written as given, plus StatusHeader and, for age >= 0, Age.
func (c *Cache) send(w http.ResponseWriter, r *http.Request, status int, h http.Header, body []byte, cacheStatus string, age time.Duration, counter *int) {
	c.mu.Lock()
	*counter++
	c.mu.Unlock()
	if age >= 0 {
		h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	}
	h.Set(StatusHeader, cacheStatus)
	dst := w.Header()
	for k, vs := range h {
		dst[k] = vs
	}
	w.WriteHeader(status)
	// As net/http's server would, send no body where HTTP allows none.
	if r.Method != http.MethodHead && len(body) > 0 && status >= 200 &&
		status != http.StatusNoContent && status != http.StatusNotModified {
		_, _ = w.Write(body)
	}
}

// primaryKey is the primary cache key of RFC 9111 §2: the request method and
// the target URI.
func primaryKey(method string, r *http.Request) string {
	return keyFor(method, scheme(r), host(r), r.URL.RequestURI())
}

func keyFor(method, scheme, host, requestURI string) string {
	return method + " " + scheme + "://" + strings.ToLower(host) + requestURI
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func host(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// lookup returns the stored response under key that r selects (§4.1), the one
// stored last if several do, or nil.
func (c *Cache) lookup(key string, r *http.Request) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	vs := c.entries[key]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].selectedBy(r) {
			return vs[i]
		}
	}
	return nil
}

// selectedBy reports whether r's values of the fields named in the stored
// response's Vary match those of the request that stored it (§4.1).
func (e *entry) selectedBy(r *http.Request) bool {
	if e.varyStar {
		return false
	}
	for name, want := range e.vary {
		if normalise(r.Header.Values(name)) != want {
			return false
		}
	}
	return true
}

// normalise combines the lines of a field and trims the whitespace around
// its list members, two of the transformations under which §4.1 says request
// fields match.
func normalise(lines []string) fieldValue {
	if len(lines) == 0 {
		return fieldValue{}
	}
	parts := strings.Split(strings.Join(lines, ","), ",")
	for i, p := range parts {
		parts[i] = strings.Trim(p, " \t")
	}
	return fieldValue{value: strings.Join(parts, ","), present: true}
}

// reusable reports whether e may be sent for a request with directives reqCC
// without contacting the origin (§4, §4.2, §5.2).
func (c *Cache) reusable(e *entry, reqCC directives, now time.Time) bool {
	if unqualified, _ := e.cc.fields("no-cache"); unqualified || reqCC.has("no-cache") {
		return false
	}
	age := e.currentAge(now)
	if c.lifetime(e) <= age {
		return false
	}
	if secs, present, valid := reqCC.delta("max-age"); present && valid && age > time.Duration(secs)*time.Second {
		return false
	}
	return true
}

// heuristicallyCacheable lists the status codes RFC 9110 §15.1 defines as
// heuristically cacheable.
var heuristicallyCacheable = map[int]bool{
	200: true, 203: true, 204: true, 206: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 501: true,
}

// lifetime is e's freshness lifetime (§4.2.1, §4.2.2); 0 when it has none.
func (c *Cache) lifetime(e *entry) time.Duration {
	for _, name := range []string{"s-maxage", "max-age"} { // s-maxage first: a shared cache
		if secs, present, valid := e.cc.delta(name); present {
			if !valid {
				return 0
			}
			return time.Duration(secs) * time.Second
		}
	}
	if expires := e.header.Values("Expires"); len(expires) > 0 {
		if len(expires) > 1 {
			return 0
		}
		t, err := http.ParseTime(expires[0])
		if err != nil { // §5.3: an invalid date, such as "0", is in the past
			return 0
		}
		return max(0, t.Sub(e.date()))
	}
	if c.HeuristicTTL > 0 && (heuristicallyCacheable[e.status] || e.cc.has("public")) {
		return c.HeuristicTTL
	}
	return 0
}

// date is the stored response's date_value (§4.2.3); the time it was
// received if its Date is invalid.
func (e *entry) date() time.Time {
	if t, err := http.ParseTime(e.header.Get("Date")); err == nil {
		return t
	}
	return e.responseTime
}

// currentAge is current_age of §4.2.3 at now.
func (e *entry) currentAge(now time.Time) time.Duration {
	var ageValue time.Duration
	if v := e.header.Get("Age"); v != "" {
		if secs, ok := parseDelta(v); ok {
			ageValue = time.Duration(secs) * time.Second
		}
	}
	apparentAge := max(0, e.responseTime.Sub(e.date()))
	responseDelay := e.responseTime.Sub(e.requestTime)
	correctedInitialAge := max(apparentAge, ageValue+responseDelay)
	return correctedInitialAge + now.Sub(e.responseTime)
}

// understood reports whether this cache understands status for the purposes
// of §3: it implements neither partial content (206) nor storing 304s, and with
// must-understand it requires a code net/http knows.
func understood(status int) bool {
	return status >= 200 && status < 600 && status != http.StatusPartialContent &&
		status != http.StatusNotModified && http.StatusText(status) != ""
}

// storable reports whether res, the response to r, may be stored by a shared
// cache (§3), and returns the header fields to store.
func storable(r *http.Request, reqCC directives, res response) (http.Header, bool) {
	cc := parseCacheControl(res.header.Values("Cache-Control"))
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return nil, false
	case res.status < 200 || res.status == http.StatusPartialContent || res.status == http.StatusNotModified:
		return nil, false // not final, or final but not understood
	case cc.has("must-understand") && !understood(res.status):
		return nil, false
	case cc.has("no-store") && !cc.has("must-understand"): // §5.2.2.3 overrides no-store
		return nil, false
	case reqCC.has("no-store"):
		return nil, false
	case r.Header.Get("Authorization") != "" && // §3.5
		!cc.has("public") && !cc.has("s-maxage") && !cc.has("must-revalidate"):
		return nil, false
	}
	unqualified, private := cc.fields("private")
	if unqualified {
		return nil, false
	}
	if !cc.has("public") && res.header.Values("Expires") == nil && !cc.has("max-age") &&
		!cc.has("s-maxage") && !heuristicallyCacheable[res.status] {
		return nil, false
	}
	h := res.header.Clone()
	for _, f := range private { // §5.2.2.7: store the rest without them
		h.Del(f)
	}
	return h, true
}

// newEntry makes the entry that stores res, with header fields h, as the
// response to r.
func newEntry(r *http.Request, res response, h http.Header) *entry {
	e := &entry{response: res, key: primaryKey(r.Method, r)}
	e.header = h
	e.cc = parseCacheControl(h.Values("Cache-Control"))
	for _, line := range h.Values("Vary") {
		for _, name := range strings.Split(line, ",") {
			name = strings.TrimSpace(name)
			switch name {
			case "":
			case "*":
				e.varyStar = true
			default:
				if e.vary == nil {
					e.vary = make(map[string]fieldValue)
				}
				name = textproto.CanonicalMIMEHeaderKey(name)
				e.vary[name] = normalise(r.Header.Values(name))
			}
		}
	}
	return e
}

// store stores res, the origin's response to r, if §3 allows, in place of the
// stored responses r selects.
func (c *Cache) store(r *http.Request, reqCC directives, res response) {
	h, ok := storable(r, reqCC, res)
	if !ok {
		return
	}
	e := newEntry(r, res, h)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replace(e.key, r, nil, e)
	c.stores++
}

// replace removes old and every response r selects from the variants under
// key and, unless e is nil, adds e. c.mu must be held.
func (c *Cache) replace(key string, r *http.Request, old, e *entry) {
	kept := c.entries[key][:0:0]
	for _, v := range c.entries[key] {
		if v != old && !v.selectedBy(r) {
			kept = append(kept, v)
		}
	}
	if e != nil {
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		delete(c.entries, key)
		return
	}
	if c.entries == nil {
		c.entries = make(map[string][]*entry)
	}
	c.entries[key] = kept
}

// freshen updates the stored response e from res, the origin's 304 to its
// revalidation for r (§3.2, §4.3.3), and returns the updated response. If
// the update makes it unstorable, it is removed from the store but still
// returned, to answer r.
func (c *Cache) freshen(e *entry, r *http.Request, res response) *entry {
	h := e.header.Clone()
	for name, vs := range res.header {
		switch name {
		case "Content-Length", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			continue
		}
		h[name] = append([]string(nil), vs...)
	}
	merged := response{status: e.status, header: h, body: e.body, requestTime: res.requestTime, responseTime: res.responseTime}
	u := newEntry(r, merged, h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if sh, ok := storable(r, nil, merged); ok {
		c.replace(e.key, r, e, newEntry(r, merged, sh))
	} else {
		c.replace(e.key, r, e, nil)
	}
	return u
}

// sameValidators reports whether a 304 identifies the stored response whose
// header fields are stored (§4.3.4): its validators, where it has them, are
// those of the stored response (ETags compared weakly).
func sameValidators(stored, notModified http.Header) bool {
	if v := notModified.Get("ETag"); v != "" && strings.TrimPrefix(v, "W/") != strings.TrimPrefix(stored.Get("ETag"), "W/") {
		return false
	}
	if v := notModified.Get("Last-Modified"); v != "" && stored.Get("Last-Modified") != "" && v != stored.Get("Last-Modified") {
		return false
	}
	return true
}

// conditional reports whether r carries preconditions of its own.
func conditional(r *http.Request) bool {
	for _, f := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"} {
		if r.Header.Get(f) != "" {
			return true
		}
	}
	return false
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// invalidate removes the stored responses for r's target URI and for the
// same-origin URIs in the response's Location and Content-Location (§4.4).
func (c *Cache) invalidate(r *http.Request, h http.Header) {
	base := &url.URL{Scheme: scheme(r), Host: host(r), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	targets := []string{r.URL.RequestURI()}
	for _, f := range []string{"Location", "Content-Location"} {
		if v := h.Get(f); v != "" {
			if u, err := base.Parse(v); err == nil && u.Scheme == base.Scheme && strings.EqualFold(u.Host, base.Host) {
				targets = append(targets, u.RequestURI())
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range targets {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			delete(c.entries, keyFor(m, base.Scheme, base.Host, t))
		}
	}
}
