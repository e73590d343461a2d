package mongostore_test

import (
	"context"
	"log"
	"time"

	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ginsession/ginsession"
	"github.com/ginsession/ginsession/store/mongostore"
)

// It needs a MongoDB server, so it is compiled but not run.
func Example() {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:27017/"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())

	sessions := mongostore.New(client.Database("shop").Collection("sessions"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A TTL index, so that MongoDB deletes expired sessions.
	if err := sessions.EnsureIndexes(ctx); err != nil {
		log.Fatal(err)
	}

	r := gin.New()
	r.Use(ginsession.New(ginsession.Options{Store: sessions}))
	r.GET("/visits", func(c *gin.Context) {
		n, _ := ginsession.Get[int](c, "visits")
		if err := ginsession.Set(c, "visits", n+1); err != nil {
			c.AbortWithStatus(500)
			return
		}
		c.JSON(200, gin.H{"visits": n + 1})
	})
	log.Fatal(r.Run(":8080"))
}

func ExampleStore_DeleteExpired() {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:27018/"))
	if err != nil {
		log.Fatal(err)
	}
	sessions := mongostore.New(client.Database("shop").Collection("sessions"))
	// On a server without TTL indexes, such as FerretDB v1, expired
	// session documents stay until something deletes them.
	for range time.Tick(10 * time.Minute) {
		if n, err := sessions.DeleteExpired(context.Background()); err != nil {
			log.Print(err)
		} else {
			log.Printf("deleted %d expired sessions", n)
		}
	}
}
