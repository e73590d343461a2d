package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
)

// The JSON API under /api, for programs (a mobile app, a script, curl):
//
//	POST /api/login   {"user": "alice", "password": "wonderland"}
//	                  → 200 {"user": "alice", "name": "Alice"}, token in the
//	                    response's Authorization: Bearer <token> header
//	GET  /api/cart    → 200 the user's cart
//	POST /api/cart    {"product": "mug", "qty": 2} (qty defaults to 1)
//	                  → 200 the cart as saved
//	POST /api/logout  → 204, with an empty Authorization header: the
//	                    token is dead, drop it
//
// Every request but login sends Authorization: Bearer <token>. The routes
// have a ginsession middleware of their own, with Options.Header
// "Authorization", over the same store and key prefix as the pages: the
// token is a session ID like the cookie's, ginsession.Login lists it on
// the user's "Your sessions" page as another device, and the cart is the
// user's saved cart, the one the shop's pages show.
//
// The token is only in the header, not in the login response's body:
// ginsession writes it there (signed, with SigningKeys), and a handler
// never holds it (ginsession.ID is the bare ID), so a copy in the body
// could only be rebuilt by hand. Read it from the header; ginsession never
// takes it from the query string, where it would end up in logs.
//
// No CSRF token, on purpose. CSRF abuses ambient credentials, the ones a
// browser adds by itself to a request another site makes it send: cookies,
// HTTP authentication, client certificates. The API accepts none of them.
// Its middleware reads only the Authorization header, which a browser
// never adds on its own, and which another site's script cannot set on a
// request to the shop (that takes a CORS preflight, and the shop answers
// none). A request that carries the shop's session cookie instead of a
// token is therefore simply anonymous, 401, not a special case: the cookie
// is not read, so it cannot be abused, and a same-origin script that sends
// a token along with the cookies its browser adds still works. Login needs
// no credential at all; a forged one would log the victim's browser in
// nowhere, as the browser does not keep the token and the other site
// cannot read it.

// apiRealm is the realm in the WWW-Authenticate header of a 401.
const apiRealm = `Bearer realm="Gopher Goods"`

// apiError is the body of every API error.
type apiError struct {
	Error string `json:"error"`
}

// apiFail answers status with msg and stops the request.
func apiFail(c *gin.Context, status int, msg string) {
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", apiRealm)
	}
	c.Abort()
	c.PureJSON(status, apiError{Error: msg}) // no \u003c for the < in a message
}

// apiNotFound answers unknown /api routes in JSON, without touching a
// session; other paths go on to the shop's 404 page.
func apiNotFound(c *gin.Context) {
	if path := c.Request.URL.Path; path == "/api" || strings.HasPrefix(path, "/api/") {
		apiFail(c, http.StatusNotFound, fmt.Sprintf("no such API route: %s %s", c.Request.Method, clip(path, 60)))
	}
}

// apiLoadSession loads the session before an API handler runs, so that a
// store outage is a 503 and the handler never runs without a session. API
// responses are per user: no cache keeps them.
func (s *server) apiLoadSession(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if err := ginsession.Load(c); err != nil {
		s.log.Error("session store unavailable", "err", err, "path", c.Request.URL.Path)
		apiFail(c, http.StatusServiceUnavailable, "the shop cannot reach its session store; try again in a moment")
		return
	}
	c.Next()
}

// apiStoreFailed is the API middleware's ErrorHandler, for a session that
// could not be saved: a JSON 503 instead of ginsession's empty one.
func (s *server) apiStoreFailed(c *gin.Context, err error) {
	s.log.Error("session store failed", "err", err, "path", c.Request.URL.Path)
	if !c.Writer.Written() {
		apiFail(c, http.StatusServiceUnavailable, "the shop cannot reach its session store; try again in a moment")
	}
}

// apiStoreError answers a request whose cart could not be read or saved.
func (s *server) apiStoreError(c *gin.Context, err error) {
	s.log.Error("cart store failed", "err", err, "path", c.Request.URL.Path)
	msg := "the shop cannot reach its store, so nothing was changed; try again in a moment"
	if errors.Is(err, errCartBusy) {
		msg = "the cart was changed from several places at once; try again"
	}
	apiFail(c, http.StatusServiceUnavailable, msg)
}

// readJSON decodes the request body, at most maxFormBytes of one JSON
// object with no unknown fields, into v. It answers 400 and returns false
// otherwise.
func readJSON(c *gin.Context, v any) bool {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		apiFail(c, http.StatusBadRequest, "the body is not the JSON object this route takes: "+clip(err.Error(), 100))
		return false
	}
	return true
}

// apiUser returns the user the request's token is logged in as. Without a
// token, or with one that ended, it answers 401 and returns false.
func (s *server) apiUser(c *gin.Context) (string, bool) {
	user := currentUser(c)
	if user == "" {
		apiFail(c, http.StatusUnauthorized,
			"log in first: POST /api/login, then send the token it returns as Authorization: Bearer <token>")
		return "", false
	}
	return user, true
}

// apiCredentials is the body of POST /api/login.
type apiCredentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// apiLogin checks the password and logs the session in: ginsession gives
// it a new ID, binds it to the user, and sends it as the token in the
// Authorization header of this response.
func (s *server) apiLogin(c *gin.Context) {
	var cred apiCredentials
	if !readJSON(c, &cred) {
		return
	}
	name := strings.TrimSpace(cred.User)
	if name == "" || cred.Password == "" {
		apiFail(c, http.StatusBadRequest, `send {"user": "...", "password": "..."}`)
		return
	}
	if !s.users.check(name, cred.Password) {
		apiFail(c, http.StatusUnauthorized, "unknown user or wrong password")
		return
	}
	if err := ginsession.Login(c, name); err != nil {
		if errors.Is(err, ginsession.ErrSessionsDisabled) {
			apiFail(c, http.StatusServiceUnavailable, "sessions are switched off (-store null): nobody can log in")
			return
		}
		s.apiStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": name, "name": s.users.displayName(name)})
}

// apiLogout ends the session: ginsession deletes it, takes it off the
// user's list, and sends an empty Authorization header. Without a live
// token it does nothing, and still answers 204.
func (s *server) apiLogout(c *gin.Context) {
	ginsession.Destroy(c) // its only error here is ErrSessionsDisabled: nothing to end
	c.Status(http.StatusNoContent)
}

// apiLine is one line of a cart in JSON. Prices are in cents.
type apiLine struct {
	Product string `json:"product"`
	Name    string `json:"name"`
	Qty     int    `json:"qty"`
	Price   int    `json:"price"`
	Total   int    `json:"total"`
}

// apiCartBody is a cart in JSON: its lines in catalogue order, how many
// items, and the total in cents.
type apiCartBody struct {
	Items []apiLine `json:"items"`
	Count int       `json:"count"`
	Total int       `json:"total"`
}

func cartJSON(cart Cart) apiCartBody {
	lines, total := cart.lines()
	body := apiCartBody{Items: make([]apiLine, 0, len(lines)), Count: cart.Count(), Total: total}
	for _, l := range lines {
		body.Items = append(body.Items, apiLine{Product: l.Product.ID, Name: l.Product.Name, Qty: l.Qty, Price: l.Product.Price, Total: l.Total})
	}
	return body
}

// apiCart returns the user's saved cart.
func (s *server) apiCart(c *gin.Context) {
	user, ok := s.apiUser(c)
	if !ok {
		return
	}
	cart, err := s.carts.Load(c.Request.Context(), user)
	if err != nil {
		s.apiStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, cartJSON(cart))
}

// apiItem is the body of POST /api/cart. Qty nil means 1.
type apiItem struct {
	Product string `json:"product"`
	Qty     *int   `json:"qty"`
}

// apiAddToCart adds to the user's saved cart, with the same rules as the
// shop's form: a product it sells, 1 to 99 at a time, at most 99 of each.
func (s *server) apiAddToCart(c *gin.Context) {
	user, ok := s.apiUser(c)
	if !ok {
		return
	}
	var item apiItem
	if !readJSON(c, &item) {
		return
	}
	p, ok := productByID(strings.TrimSpace(item.Product))
	if !ok {
		apiFail(c, http.StatusBadRequest, fmt.Sprintf("we don't sell %q", clip(item.Product, 40)))
		return
	}
	n := 1
	if item.Qty != nil {
		n = *item.Qty
	}
	if n < 1 || n > maxQty {
		apiFail(c, http.StatusBadRequest, fmt.Sprintf("qty must be from 1 to %d", maxQty))
		return
	}
	ctx := c.Request.Context()
	cart, err := s.carts.Load(ctx, user)
	if err != nil {
		s.apiStoreError(c, err)
		return
	}
	if have := cart[p.ID]; have+n > maxQty {
		apiFail(c, http.StatusBadRequest, fmt.Sprintf("a cart holds at most %d of each product; it has %d × %s already", maxQty, have, p.Name))
		return
	}
	// As on the pages: a racing add is capped again on the latest cart.
	saved, err := s.carts.Update(ctx, user, addItems(p.ID, n))
	if err != nil {
		s.apiStoreError(c, err)
		return
	}
	c.JSON(http.StatusOK, cartJSON(saved))
}
