package sessions_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/sessions"
	"github.com/ginsession/ginsession/store/memstore"
)

// A visit counter written for gin-contrib/sessions, moved to ginsession.
// Before, with gin-contrib/sessions and its Redis store:
//
//	import (
//		"github.com/gin-contrib/sessions"
//		"github.com/gin-contrib/sessions/redis"
//	)
//
//	store, _ := redis.NewStore(10, "tcp", "localhost:6379", "", []byte("secret"))
//	r.Use(sessions.Sessions("mysession", store))
//
// After: the imports and the store line change (here the in-process
// memstore; redisstore.New(rdb) for Redis), the handler does not. Its
// Save is now optional.
func Example_migration() {
	r := gin.New()
	r.Use(sessions.Sessions("mysession", ginsession.Options{Store: memstore.New()}))

	r.GET("/incr", func(c *gin.Context) {
		session := sessions.Default(c)
		var count int
		v := session.Get("count")
		if v == nil {
			count = 0
		} else {
			count = v.(int) // an int was stored, an int comes back
			count++
		}
		session.Set("count", count)
		session.Save()
		c.JSON(200, gin.H{"count": count})
	})

	var cookie string
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/incr", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if c := w.Result().Cookies(); len(c) > 0 {
			cookie = c[0].Name + "=" + c[0].Value
		}
		fmt.Println(w.Body.String())
	}
	// Output:
	// {"count":0}
	// {"count":1}
	// {"count":2}
}

// User is a type a program stores in its sessions.
type User struct {
	Name  string
	Admin bool
}

// Types stored in a session come back as themselves once registered, as
// gob.Register made gin-contrib/sessions encode them.
func ExampleRegister() {
	sessions.Register(User{}) // in place of gob.Register(User{}), once at start-up

	r := gin.New()
	r.Use(sessions.Sessions("mysession", ginsession.Options{Store: memstore.New()}))
	r.GET("/", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("user", User{Name: "ann", Admin: true})
		s.Set("tags", []string{"a", "b"})
		u := s.Get("user").(User)
		fmt.Printf("%s %v %q\n", u.Name, u.Admin, s.Get("tags").([]string))
	})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	// Output: ann true ["a" "b"]
}
