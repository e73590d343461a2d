package main

import (
	"fmt"
	"maps"
	"sort"
)

// A product is one thing the shop sells. Prices are in cents.
type product struct {
	ID    string
	Name  string
	Blurb string
	Price int
	Tile  string // a word or two on its tile in the catalogue
	Hue   int    // colour of the tile, in degrees
}

// catalogue is everything on sale, in the order the shop shows it.
var catalogue = []product{
	{ID: "mug", Name: "Gopher mug", Blurb: "Stoneware, 350 ml, survives the dishwasher.", Price: 1200, Tile: "350 ml", Hue: 200},
	{ID: "tee", Name: "Session T-shirt", Blurb: "Organic cotton, printed with a cookie.", Price: 2400, Tile: "S – XXL", Hue: 340},
	{ID: "socks", Name: "Striped socks", Blurb: "Two pairs, for the cold server room.", Price: 950, Tile: "2 pairs", Hue: 40},
	{ID: "notebook", Name: "Dotted notebook", Blurb: "A5, 160 pages, lies flat.", Price: 1400, Tile: "A5", Hue: 140},
	{ID: "stickers", Name: "Sticker pack", Blurb: "Twelve vinyl stickers for your laptop.", Price: 400, Tile: "× 12", Hue: 280},
	{ID: "hoodie", Name: "Zip hoodie", Blurb: "Heavy fleece with a pocket for your keys.", Price: 4900, Tile: "Fleece", Hue: 10},
}

// productByID returns the product with the given ID.
func productByID(id string) (product, bool) {
	for _, p := range catalogue {
		if p.ID == id {
			return p, true
		}
	}
	return product{}, false
}

// maxQty is the most of one product a cart can hold.
const maxQty = 99

// A Cart maps product IDs to quantities, each between 1 and maxQty. The
// zero value is an empty cart.
//
// A Cart is kept in the session (anonymous visitors) or in the user's
// saved cart (logged-in users), and changed only through the pure
// functions below, which ginsession.Update and userCarts.Update may run
// more than once.
type Cart map[string]int

// Count returns the number of items in the cart.
func (c Cart) Count() int {
	n := 0
	for _, q := range c {
		n += q
	}
	return n
}

// clone returns a copy of c that the caller may change.
func (c Cart) clone() Cart {
	out := make(Cart, len(c)+1)
	maps.Copy(out, c)
	return out
}

// addItems returns the change that adds n of product id, up to maxQty.
func addItems(id string, n int) func(Cart) Cart {
	return func(c Cart) Cart {
		c = c.clone()
		c[id] = min(c[id]+n, maxQty)
		return c
	}
}

// setQty returns the change that sets the quantity of product id to n.
func setQty(id string, n int) func(Cart) Cart {
	return func(c Cart) Cart {
		c = c.clone()
		c[id] = n
		return c
	}
}

// removeItem returns the change that drops product id from the cart.
func removeItem(id string) func(Cart) Cart {
	return func(c Cart) Cart {
		c = c.clone()
		delete(c, id)
		return c
	}
}

// mergeCarts returns the change that adds every line of other to a cart:
// quantities of the same product add up, to at most maxQty.
func mergeCarts(other Cart) func(Cart) Cart {
	return func(c Cart) Cart {
		c = c.clone()
		for id, q := range other {
			c[id] = min(c[id]+q, maxQty)
		}
		return c
	}
}

// emptyCart is the change that removes everything.
func emptyCart(Cart) Cart { return Cart{} }

// A line is one row of the cart page.
type line struct {
	Product product
	Qty     int
	Total   int
}

// lines returns the cart's rows in catalogue order, and the total price.
// Products the shop no longer sells are left out.
func (c Cart) lines() ([]line, int) {
	var out []line
	total := 0
	for _, p := range catalogue {
		if q := c[p.ID]; q > 0 {
			out = append(out, line{Product: p, Qty: q, Total: q * p.Price})
			total += q * p.Price
		}
	}
	return out, total
}

// String lists the cart's lines, sorted by product ID; tests use it.
func (c Cart) String() string {
	ids := make([]string, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", id, c[id])
	}
	return s
}

// money formats cents as dollars: 1250 → "$12.50".
func money(cents int) string {
	return fmt.Sprintf("$%d.%02d", cents/100, cents%100)
}
