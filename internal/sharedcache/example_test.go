package sharedcache_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/ginsession/ginsession/internal/sharedcache"
)

// A handler that marks a page public and sets a cookie: the cache hands the
// first visitor's cookie to the second.
func ExampleCache() {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "for-" + r.Header.Get("X-User")})
	})
	cache := &sharedcache.Cache{Origin: origin}
	for _, user := range []string{"alice", "bob"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		cache.ServeHTTP(w, r)
		fmt.Println(user, w.Header().Get(sharedcache.StatusHeader), w.Header().Get("Set-Cookie"))
	}
	hits, misses, stores := cache.Stats()
	fmt.Println(hits, misses, stores)
	// Output:
	// alice MISS sid=for-alice
	// bob HIT sid=for-alice
	// 1 1 1
}
