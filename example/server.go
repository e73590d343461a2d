package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
)

// keyCart is the session key of an anonymous visitor's cart (a Cart).
// ginsession keeps flash messages, and who is logged in (Login), under
// reserved keys of its own.
const keyCart = "cart"

// savedCartTTL is how long a logged-in user's cart is kept after its last
// use: longer than a session, so that it waits for the next visit.
const savedCartTTL = 90 * 24 * time.Hour

// serverConfig is what newServer needs. The zero value runs the shop on an
// in-process memstore.
type serverConfig struct {
	// Store keeps the sessions and the users' saved carts. Nil means a
	// new memstore.
	Store store.Store
	// StoreName says which store it is ("memory", "redis", "null"); the
	// footer and the session page show it. Empty means "memory".
	StoreName string
	// KeyPrefix goes in front of every store key. Empty means "shop:":
	// sessions live under "shop:session:<id>", carts under "shop:cart:<user>".
	KeyPrefix string
	// BcryptCost hashes the demo users' passwords. Zero means
	// bcrypt.DefaultCost; tests use bcrypt.MinCost.
	BcryptCost int
	// Logger receives the shop's and ginsession's log lines. Nil means
	// slog.Default().
	Logger *slog.Logger
	// Secret signs the CSRF tokens; at least 32 bytes. Nil means a random
	// secret for this process: tokens then stop passing when the process
	// restarts, and one instance does not accept another's, so give every
	// instance behind a load balancer the same secret.
	Secret []byte
	// Secure says the shop is reached over HTTPS (directly or through a
	// proxy): both cookies get the Secure attribute, and the CSRF cookie
	// is named "__Host-csrf".
	Secure bool
	// Observer, if set, is told about every session load and commit
	// (ginsession.Options.Observer); -otel sets one.
	Observer ginsession.Observer
}

// server holds what the handlers share.
type server struct {
	storeName string
	users     *userDB
	carts     *userCarts
	pages     pages
	csrf      *csrfGuard
	log       *slog.Logger
}

// newServer builds the shop's router.
func newServer(cfg serverConfig) (http.Handler, error) {
	st := cfg.Store
	if st == nil {
		st = memstore.New()
	}
	prefix := cmp.Or(cfg.KeyPrefix, "shop:")
	log := cmp.Or(cfg.Logger, slog.Default())
	users, err := newUserDB(cmp.Or(cfg.BcryptCost, bcrypt.DefaultCost))
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	csrf, err := newCSRFGuard(cfg.Secret, cfg.Secure)
	if err != nil {
		return nil, err
	}
	s := &server{
		storeName: cmp.Or(cfg.StoreName, "memory"),
		users:     users,
		carts:     &userCarts{store: st, prefix: prefix + "cart:", ttl: savedCartTTL, attempts: 50},
		pages:     pages,
		csrf:      csrf,
		log:       log,
	}

	// Two middlewares over one store and one key prefix: the pages carry
	// the session ID in a cookie, the JSON API (api.go) in an
	// "Authorization: Bearer" header. Sharing the prefix is what lists a
	// user's browsers and API clients together on "Your sessions", and
	// lets one end the other.
	webSessions := ginsession.New(ginsession.Options{
		Store:     st,
		KeyPrefix: prefix + "session:",
		Cookie:    ginsession.CookieOptions{Secure: cfg.Secure},
		Logger:    log,
		Observer:  cfg.Observer,
	})
	apiSessions := ginsession.New(ginsession.Options{
		Store:        st,
		KeyPrefix:    prefix + "session:",
		Header:       "Authorization",
		Logger:       log,
		Observer:     cfg.Observer,
		ErrorHandler: s.apiStoreFailed,
	})

	r := gin.New()
	r.Use(gin.Recovery())

	// The stylesheet never touches the session, so serving it costs no
	// store round trip and sets no cookie.
	r.GET("/static/style.css", serveStyle)
	r.HEAD("/static/style.css", serveStyle)

	// Every page shows the cart, so each loads the session up front,
	// turning a store outage into a proper error page. A visitor without a
	// session cookie costs no store call, and looking stores nothing: the
	// CSRF token is in a cookie of its own (csrf.go).
	p := r.Group("/", webSessions, s.loadSession)
	p.GET("/", s.cataloguePage)
	p.GET("/cart", s.cartPage)
	p.GET("/login", s.loginPage)
	p.GET("/session", s.sessionPage)
	p.GET("/account/sessions", s.sessionsPage)

	f := p.Group("/", s.checkCSRF)
	f.POST("/cart/add", s.addToCart)
	f.POST("/cart/update", s.updateCart)
	f.POST("/cart/remove", s.removeFromCart)
	f.POST("/cart/empty", s.emptyCart)
	f.POST("/login", s.login)
	f.POST("/logout", s.logout)
	f.POST("/account/sessions/end", s.endSession)
	f.POST("/account/sessions/end-others", s.endOtherSessions)

	// The API has no cookie middleware: a cookie opens nothing there.
	a := r.Group("/api", apiSessions, s.apiLoadSession)
	a.POST("/login", s.apiLogin)
	a.GET("/cart", s.apiCart)
	a.POST("/cart", s.apiAddToCart)
	a.POST("/logout", s.apiLogout)

	r.NoRoute(apiNotFound, webSessions, s.loadSession, func(c *gin.Context) {
		s.renderError(c, http.StatusNotFound, "There is no page at "+c.Request.URL.Path+".")
	})
	return r, nil
}

// loadSession loads the session before a page handler runs. If the store
// is down, it answers 503 with an error page and the handler never runs.
func (s *server) loadSession(c *gin.Context) {
	if err := ginsession.Load(c); err != nil {
		s.log.Error("session store unavailable", "err", err, "path", c.Request.URL.Path)
		s.renderBare(c, http.StatusServiceUnavailable,
			"The shop cannot reach its session store right now. Please try again in a moment.")
		c.Abort()
		return
	}
	c.Next()
}

// A flash is a one-time message shown on the next page.
type flash struct {
	Kind string // "ok" or "info"
	Text string
}

// say queues a flash message for the next page.
func say(c *gin.Context, kind, format string, args ...any) {
	ginsession.AddFlash(c, flash{Kind: kind, Text: fmt.Sprintf(format, args...)})
}

// seeOther ends a successful form post: the browser loads the next page
// with GET, so reloading it does not post the form again.
func seeOther(c *gin.Context, path string) {
	c.Redirect(http.StatusSeeOther, path)
}

// currentUser returns the logged-in user's name, or "": the user
// ginsession.Login bound the session to.
func currentUser(c *gin.Context) string {
	return ginsession.UserID(c)
}

// cartOf returns the visitor's cart: the saved cart of a logged-in user,
// the session's cart otherwise.
func (s *server) cartOf(c *gin.Context) (Cart, error) {
	if user := currentUser(c); user != "" {
		return s.carts.Load(c.Request.Context(), user)
	}
	cart, _ := ginsession.Get[Cart](c, keyCart)
	if cart == nil {
		cart = Cart{}
	}
	return cart, nil
}

// changeCart applies change to the visitor's cart, atomically with respect
// to other tabs and browsers: with ginsession.Update for a session's cart,
// with the same compare-and-set loop for a user's saved cart.
func (s *server) changeCart(c *gin.Context, change func(Cart) Cart) error {
	if user := currentUser(c); user != "" {
		_, err := s.carts.Update(c.Request.Context(), user, change)
		return err
	}
	err := ginsession.Update(c, keyCart, change)
	if errors.Is(err, ginsession.ErrSessionsDisabled) {
		return nil // -store null: nothing is kept, as every page says
	}
	return err
}

// storeFailed answers a request whose cart could not be read or saved.
func (s *server) storeFailed(c *gin.Context, err error) {
	s.log.Error("cart store failed", "err", err, "path", c.Request.URL.Path)
	status := http.StatusServiceUnavailable
	msg := "The shop cannot reach its store right now, so nothing was changed. Please try again in a moment."
	if errors.Is(err, errCartBusy) {
		msg = "Your cart was changed from several places at once. Please try again."
	}
	s.renderBare(c, status, msg)
}

// formProduct reads the "product" field. It answers 400 and returns false
// when the field is missing or names no product.
func (s *server) formProduct(c *gin.Context, onBad func(*gin.Context, int, string)) (product, bool) {
	id := strings.TrimSpace(c.PostForm("product"))
	if id == "" {
		onBad(c, http.StatusBadRequest, "Which product? The form did not say.")
		return product{}, false
	}
	p, ok := productByID(id)
	if !ok {
		onBad(c, http.StatusBadRequest, fmt.Sprintf("We don't sell %q.", clip(id, 40)))
		return product{}, false
	}
	return p, true
}

// formQty reads the "qty" field: a whole number from 1 to maxQty. It
// answers 400 and returns false otherwise.
func (s *server) formQty(c *gin.Context, onBad func(*gin.Context, int, string)) (int, bool) {
	raw := strings.TrimSpace(c.PostForm("qty"))
	if raw == "" {
		onBad(c, http.StatusBadRequest, "How many? The quantity is missing.")
		return 0, false
	}
	n, err := strconv.Atoi(raw)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		onBad(c, http.StatusBadRequest, fmt.Sprintf("%q is not a quantity: use a whole number from 1 to %d.", clip(raw, 20), maxQty))
		return 0, false
	}
	if err != nil || n < 1 || n > maxQty {
		onBad(c, http.StatusBadRequest, fmt.Sprintf("The quantity must be from 1 to %d; %s is not.", maxQty, clip(raw, 20)))
		return 0, false
	}
	return n, true
}

// clip shortens user input quoted back in a message.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func (s *server) addToCart(c *gin.Context) {
	p, ok := s.formProduct(c, s.renderCatalogue)
	if !ok {
		return
	}
	n, ok := s.formQty(c, s.renderCatalogue)
	if !ok {
		return
	}
	cart, err := s.cartOf(c)
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	if have := cart[p.ID]; have+n > maxQty {
		s.renderCatalogue(c, http.StatusBadRequest, fmt.Sprintf(
			"A cart holds at most %d of each product. You have %d × %s already.", maxQty, have, p.Name))
		return
	}
	// If another tab adds at the same moment, the cap is applied again on
	// the latest cart rather than trusting the check above.
	if err := s.changeCart(c, addItems(p.ID, n)); err != nil {
		s.storeFailed(c, err)
		return
	}
	say(c, "ok", "Added %d × %s to your cart.", n, p.Name)
	seeOther(c, "/")
}

func (s *server) updateCart(c *gin.Context) {
	p, ok := s.formProduct(c, s.renderCart)
	if !ok {
		return
	}
	n, ok := s.formQty(c, s.renderCart)
	if !ok {
		return
	}
	if err := s.changeCart(c, setQty(p.ID, n)); err != nil {
		s.storeFailed(c, err)
		return
	}
	say(c, "ok", "You now have %d × %s in your cart.", n, p.Name)
	seeOther(c, "/cart")
}

func (s *server) removeFromCart(c *gin.Context) {
	p, ok := s.formProduct(c, s.renderCart)
	if !ok {
		return
	}
	if err := s.changeCart(c, removeItem(p.ID)); err != nil {
		s.storeFailed(c, err)
		return
	}
	say(c, "ok", "Removed %s from your cart.", p.Name)
	seeOther(c, "/cart")
}

func (s *server) emptyCart(c *gin.Context) {
	var err error
	if user := currentUser(c); user != "" {
		_, err = s.carts.Update(c.Request.Context(), user, emptyCart)
	} else {
		err = ginsession.Delete(c, keyCart)
	}
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	say(c, "ok", "Your cart is empty.")
	seeOther(c, "/cart")
}

// login checks the password, then merges the anonymous cart into the
// user's saved cart, logs the session in (a new ID, bound to the user and
// listed on their "Your sessions" page) and gives the browser a new CSRF
// token. "Remember me" chooses between a cookie that lasts as long as the
// session and one that goes when the browser closes.
func (s *server) login(c *gin.Context) {
	name := strings.TrimSpace(c.PostForm("user"))
	password := c.PostForm("password")
	if name == "" || password == "" {
		s.renderLogin(c, http.StatusBadRequest, "Enter a user name and a password.", name)
		return
	}
	if !s.users.check(name, password) {
		s.renderLogin(c, http.StatusUnauthorized, "Unknown user or wrong password.", name)
		return
	}

	// Merge first: if the store fails here, the visitor is still logged
	// out with their anonymous cart intact and can simply try again.
	anon, _ := ginsession.Get[Cart](c, keyCart)
	if currentUser(c) != "" {
		anon = nil // switching users: a logged-in session holds no cart of its own
	}
	ctx := c.Request.Context()
	var saved Cart
	var err error
	if len(anon) > 0 {
		saved, err = s.carts.Update(ctx, name, mergeCarts(anon))
	} else {
		saved, err = s.carts.Load(ctx, name)
	}
	if err != nil {
		s.storeFailed(c, err)
		return
	}

	// Login gives the session a new ID, so that an ID planted in this
	// browser before login is worthless now, and binds it to the user. A
	// new CSRF token, signed for this user: one issued before login, or to
	// anyone else, never passes for this account.
	if err := ginsession.Login(c, name); err != nil && !errors.Is(err, ginsession.ErrSessionsDisabled) {
		s.storeFailed(c, err)
		return
	}
	// Kept in the session, so the choice holds for every later response.
	// Login has just loaded and changed the session, so this cannot fail
	// but with ErrSessionsDisabled (-store null), which changes nothing.
	ginsession.Remember(c, c.PostForm("remember") != "")
	ginsession.Delete(c, keyCart)
	s.csrf.rotate(c, name)

	switch n := anon.Count(); {
	case n > 0:
		say(c, "ok", "Welcome, %s! We kept the %d %s you picked before logging in: your cart now holds %d.",
			s.users.displayName(name), n, plural(n, "item", "items"), saved.Count())
	case saved.Count() > 0:
		say(c, "ok", "Welcome back, %s! Your saved cart holds %d %s.",
			s.users.displayName(name), saved.Count(), plural(saved.Count(), "item", "items"))
	default:
		say(c, "ok", "Welcome, %s!", s.users.displayName(name))
	}
	seeOther(c, "/cart")
}

// logout ends the session. The user's saved cart stays for their next
// login; this browser goes on with a fresh, empty session.
func (s *server) logout(c *gin.Context) {
	ginsession.Destroy(c)
	s.csrf.rotate(c, "") // the user's token must not outlive the login
	say(c, "info", "You are logged out. Your cart is saved for the next time you log in.")
	seeOther(c, "/")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
