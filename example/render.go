package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
)

//go:embed templates static
var assets embed.FS

// pages holds one template set per page, each the layout plus the page.
type pages map[string]*template.Template

var pageNames = []string{"catalogue", "cart", "login", "session", "sessions", "error"}

func parsePages() (pages, error) {
	funcs := template.FuncMap{"money": money, "when": when}
	ps := pages{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		ps[name] = t
	}
	return ps, nil
}

// page is what every template gets. The layout uses the first block of
// fields; each page uses some of the rest.
type page struct {
	Title     string
	Nav       string // the current section: "shop", "cart", "session", "sessions", "login"
	User      string // display name of the logged-in user, or ""
	CSRF      string
	CartCount int
	Flashes   []flash
	Error     string // why the request was refused (4xx), shown in red
	StoreName string
	NullStore bool
	Bare      bool // the session is unavailable: no header actions

	Products  []product
	Lines     []line
	Total     int
	DemoUsers []demoUser
	LoginName string
	Status    int
	Session   sessionInfo
	Devices   []deviceRow // the sessions page
}

// sessionInfo is what the session page shows.
type sessionInfo struct {
	IDPrefix  string // the first characters of the ID, or "" if none yet
	Keys      []keyInfo
	ExpiresAt time.Time
	ExpiresIn string
}

type keyInfo struct {
	Key, Value, Note string
}

// newPage fills in what the layout shows: greeting, cart count, flash
// messages and the CSRF token. It reads the session (already loaded by
// loadSession) and, for a logged-in user, the saved cart. It writes
// nothing to the store: a new CSRF token goes in a cookie.
func (s *server) newPage(c *gin.Context, nav, title string) (*page, Cart, error) {
	p := &page{Title: title, Nav: nav, StoreName: s.storeName, NullStore: s.storeName == "null"}
	p.CSRF = s.csrf.token(c)
	if user := currentUser(c); user != "" {
		p.User = s.users.displayName(user)
	}
	cart, err := s.cartOf(c)
	if err != nil {
		return nil, nil, err
	}
	p.CartCount = cart.Count()
	p.Flashes = ginsession.Flashes[flash](c)
	return p, cart, nil
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 and the session commits before the first byte.
func (s *server) render(c *gin.Context, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("rendering a page", "page", name, "err", err)
		c.String(http.StatusInternalServerError, "Internal error: the page could not be rendered.")
		return
	}
	c.Header("Cache-Control", "no-store") // the pages are per visitor
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

func (s *server) cataloguePage(c *gin.Context) { s.renderCatalogue(c, http.StatusOK, "") }

// renderCatalogue shows the products, with errMsg if the request was refused.
func (s *server) renderCatalogue(c *gin.Context, status int, errMsg string) {
	p, _, err := s.newPage(c, "shop", "Shop")
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	p.Error, p.Products = errMsg, catalogue
	s.render(c, status, "catalogue", p)
}

func (s *server) cartPage(c *gin.Context) { s.renderCart(c, http.StatusOK, "") }

// renderCart shows the cart, with errMsg if the request was refused.
func (s *server) renderCart(c *gin.Context, status int, errMsg string) {
	p, cart, err := s.newPage(c, "cart", "Your cart")
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	p.Error = errMsg
	p.Lines, p.Total = cart.lines()
	s.render(c, status, "cart", p)
}

func (s *server) loginPage(c *gin.Context) { s.renderLogin(c, http.StatusOK, "", "") }

// renderLogin shows the login form, keeping the name typed so far.
func (s *server) renderLogin(c *gin.Context, status int, errMsg, name string) {
	p, _, err := s.newPage(c, "login", "Log in")
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	p.Error, p.LoginName, p.DemoUsers = errMsg, name, demoUsers
	s.render(c, status, "login", p)
}

// keyNotes explain the shop's session keys on the session page.
var keyNotes = map[string]string{
	keyCart: "The cart of a visitor who has not logged in. Changed with ginsession.Update, so two tabs adding at once lose nothing.",
}

func (s *server) sessionPage(c *gin.Context) {
	p, _, err := s.newPage(c, "session", "Your session")
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	info := sessionInfo{ExpiresAt: ginsession.ExpiresAt(c)}
	if id := ginsession.ID(c); len(id) >= 8 {
		info.IDPrefix = id[:8]
	}
	if !info.ExpiresAt.IsZero() {
		info.ExpiresIn = roughly(time.Until(info.ExpiresAt))
	}
	for _, k := range ginsession.Keys(c) {
		ki := keyInfo{Key: k, Note: keyNotes[k]}
		if k == keyCart {
			cart, _ := ginsession.Get[Cart](c, k)
			ki.Value = fmt.Sprintf("%d %s: %s", cart.Count(), plural(cart.Count(), "item", "items"), cart)
		}
		info.Keys = append(info.Keys, ki)
	}
	p.Session = info
	s.render(c, http.StatusOK, "session", p)
}

// roughly formats a duration for people: "31 days", "5 hours".
func roughly(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Round(24*time.Hour)/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Round(time.Hour)/time.Hour))
	default:
		return fmt.Sprintf("%d minutes", int(d.Round(time.Minute)/time.Minute))
	}
}

// renderError answers status with msg on a page that still has the
// header, the cart count and a valid CSRF token.
func (s *server) renderError(c *gin.Context, status int, msg string) {
	p, _, err := s.newPage(c, "", http.StatusText(status))
	if err != nil {
		s.renderBare(c, status, msg)
		return
	}
	p.Error, p.Status = msg, status
	s.render(c, status, "error", p)
}

// renderBare answers status with msg without touching the session, for
// when the store is down.
func (s *server) renderBare(c *gin.Context, status int, msg string) {
	p := &page{Title: http.StatusText(status), StoreName: s.storeName, Bare: true, Error: msg, Status: status}
	s.render(c, status, "error", p)
}

// serveStyle serves the stylesheet.
func serveStyle(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.FileFromFS("static/style.css", http.FS(assets))
}
