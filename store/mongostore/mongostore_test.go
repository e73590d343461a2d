package mongostore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/mongostore"
	"github.com/ginsession/ginsession/store/storetest"
)

const urlVar = "GINSESSION_MONGO_URL"

// defaultDatabase is the database the tests use when the URL names none.
const defaultDatabase = "ginsession_test"

// requireURL returns the server's URL from the environment. If it is unset
// the test is skipped, or fails under CI=true, where every backend must be
// tested.
func requireURL(t *testing.T) string {
	t.Helper()
	return storetest.ServerEnv(t, urlVar, "mongodb://127.0.0.1:27018/")
}

// connect returns a client for the server named by the environment,
// configured by opts, and disconnects it when the test ends.
func connect(t *testing.T, opts ...*options.ClientOptions) *mongo.Client {
	t.Helper()
	uri := requireURL(t)
	client, err := mongo.Connect(append([]*options.ClientOptions{options.Client().ApplyURI(uri)}, opts...)...)
	if err != nil {
		t.Fatalf("%s: %v", urlVar, err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("cannot reach the server at %s: %v", urlVar, err)
	}
	return client
}

// newCollection returns a collection of client's with a random name, in
// the database the URL names (or ginsession_test), and drops it when the
// test ends. It never touches any other collection.
func newCollection(t *testing.T, client *mongo.Client) *mongo.Collection {
	t.Helper()
	db := defaultDatabase
	if cs, err := connstring.Parse(os.Getenv(urlVar)); err == nil && cs.Database != "" {
		db = cs.Database
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	coll := client.Database(db).Collection("sessions_" + hex.EncodeToString(b))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := coll.Drop(ctx); err != nil {
			t.Errorf("dropping %s: %v", coll.Name(), err)
		}
	})
	return coll
}

// isFerretDB reports whether the server is FerretDB rather than MongoDB.
func isFerretDB(t *testing.T, client *mongo.Client) bool {
	t.Helper()
	var info bson.M
	if err := client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		t.Fatalf("buildInfo: %v", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok
}

func TestConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	s := mongostore.New(newCollection(t, client))
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestExpiredNotEvicted checks that a document past its expiry counts as
// gone whether or not MongoDB has evicted it. A second Store, whose clock
// runs two minutes ahead, sees the first one's one-minute sessions expired.
func TestExpiredNotEvicted(t *testing.T) {
	t.Parallel()
	coll := newCollection(t, connect(t))
	now := mongostore.New(coll)
	later := mongostore.New(coll, mongostore.WithClock(func() time.Time { return time.Now().Add(2 * time.Minute) }))
	ctx := context.Background()

	v1, err := now.Save(ctx, "k", []byte("old"), 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{0, time.Hour} {
		if _, _, err := later.Load(ctx, "k", ttl); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load(ttl %v) of an expired document = %v; want ErrNotFound", ttl, err)
		}
	}
	// The renewing Load above must not have revived it.
	if _, v, err := now.Load(ctx, "k", 0); err != nil || v != v1 {
		t.Fatalf("Load = version %d, %v; want version %d", v, err, v1)
	}
	if _, err := later.Save(ctx, "k", []byte("late"), v1, time.Hour); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save with the version of an expired document = %v; want ErrConflict", err)
	}
	v2, err := later.Save(ctx, "k", []byte("new"), 0, time.Hour)
	if err != nil {
		t.Fatalf("Save(version 0) over an expired document: %v", err)
	}
	if v2 == v1 {
		t.Fatalf("recreating the document reused version %d", v1)
	}
	if data, v, err := now.Load(ctx, "k", 0); err != nil || string(data) != "new" || v != v2 {
		t.Fatalf("Load = %q, version %d, %v; want %q, version %d", data, v, err, "new", v2)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("collection holds %d documents (%v); want 1", n, err)
	}
}

func TestDeleteExpired(t *testing.T) {
	t.Parallel()
	coll := newCollection(t, connect(t))
	now := mongostore.New(coll)
	later := mongostore.New(coll, mongostore.WithClock(func() time.Time { return time.Now().Add(2 * time.Minute) }))
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if _, err := now.Save(ctx, k, []byte(k), 0, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := now.Save(ctx, "long", []byte("x"), 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := now.DeleteExpired(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpired with nothing expired = %d, %v; want 0", n, err)
	}
	if n, err := later.DeleteExpired(ctx); err != nil || n != 3 {
		t.Fatalf("DeleteExpired = %d, %v; want 3", n, err)
	}
	if _, _, err := now.Load(ctx, "long", 0); err != nil {
		t.Fatalf("Load of the live session after DeleteExpired: %v", err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("collection holds %d documents (%v); want 1", n, err)
	}
}

// TestDocumentLayout checks the fields and BSON types of a stored session.
func TestDocumentLayout(t *testing.T) {
	t.Parallel()
	coll := newCollection(t, connect(t))
	s := mongostore.New(coll)
	ctx := context.Background()
	before := time.Now()
	v, err := s.Save(ctx, "session:abc", []byte("payload"), 0, 90*time.Second+500*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	raw, err := coll.FindOne(ctx, bson.D{}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	elems, err := raw.Elements()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range elems {
		keys = append(keys, e.Key())
	}
	// The order depends on the server: MongoDB 5.0 and later add the
	// fields of $set in lexicographic order.
	slices.Sort(keys)
	if got := strings.Join(keys, ","); got != "_id,data,expires,version" {
		t.Fatalf("fields = %s; want _id, data, expires and version", got)
	}
	if id, ok := raw.Lookup("_id").StringValueOK(); !ok || id != "session:abc" {
		t.Errorf("_id = %v; want the string %q", raw.Lookup("_id"), "session:abc")
	}
	if sub, data, ok := raw.Lookup("data").BinaryOK(); !ok || sub != 0 || string(data) != "payload" {
		t.Errorf("data = %v; want BinData(0) of the payload", raw.Lookup("data"))
	}
	if n, ok := raw.Lookup("version").Int64OK(); !ok || uint64(n) != v {
		t.Errorf("version = %v; want the int64 %d", raw.Lookup("version"), int64(v))
	}
	exp, ok := raw.Lookup("expires").DateTimeOK()
	if !ok {
		t.Fatalf("expires = %v; want a date", raw.Lookup("expires"))
	}
	// The ttl's 0.5 ms round up to a whole millisecond.
	lo := before.Add(90*time.Second).UnixMilli() + 1
	hi := after.Add(90*time.Second).UnixMilli() + 1
	if exp < lo || exp > hi {
		t.Errorf("expires = %d ms; want between %d and %d", exp, lo, hi)
	}
}

// TestVersionsAsInt64 checks versions with the top bit set, which are
// stored as negative int64s.
func TestVersionsAsInt64(t *testing.T) {
	t.Parallel()
	coll := newCollection(t, connect(t))
	s := mongostore.New(coll)
	ctx := context.Background()
	for _, stored := range []int64{-1, -1 << 63, 1<<63 - 1, 1} {
		key := "v" + strconv.FormatInt(stored, 10)
		_, err := coll.InsertOne(ctx, bson.D{
			{Key: "_id", Value: key},
			{Key: "data", Value: bson.Binary{Data: []byte("x")}},
			{Key: "version", Value: stored},
			{Key: "expires", Value: bson.NewDateTimeFromTime(time.Now().Add(time.Minute))},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ttl := range []time.Duration{0, time.Minute} {
			if _, v, err := s.Load(ctx, key, ttl); err != nil || v != uint64(stored) {
				t.Fatalf("Load(ttl %v) of version %d = %d, %v; want %d", ttl, stored, v, err, uint64(stored))
			}
		}
		if _, err := s.Save(ctx, key, []byte("y"), uint64(stored)+1, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Save with a wrong version = %v; want ErrConflict", err)
		}
		if _, err := s.Save(ctx, key, []byte("y"), uint64(stored), time.Minute); err != nil {
			t.Fatalf("Save with version %d: %v", uint64(stored), err)
		}
	}
}

// TestCorruptDocuments checks documents that this package did not write.
// A live one gives ErrCorrupt on Load and is a conflict for Save with
// version 0 or with any version it does not hold; one
// without a valid expiry is not live, so it loads as missing and a new
// session may replace it. Delete removes them all.
func TestCorruptDocuments(t *testing.T) {
	t.Parallel()
	coll := newCollection(t, connect(t))
	s := mongostore.New(coll)
	ctx := context.Background()
	exp := bson.NewDateTimeFromTime(time.Now().Add(time.Minute))
	data := bson.Binary{Data: []byte("x")}
	for name, doc := range map[string]bson.D{
		"no version":      {{Key: "data", Value: data}, {Key: "expires", Value: exp}},
		"version 0":       {{Key: "data", Value: data}, {Key: "version", Value: int64(0)}, {Key: "expires", Value: exp}},
		"int32 version":   {{Key: "data", Value: data}, {Key: "version", Value: int32(7)}, {Key: "expires", Value: exp}},
		"string version":  {{Key: "data", Value: data}, {Key: "version", Value: "7"}, {Key: "expires", Value: exp}},
		"string data":     {{Key: "data", Value: "x"}, {Key: "version", Value: int64(7)}, {Key: "expires", Value: exp}},
		"no data":         {{Key: "version", Value: int64(7)}, {Key: "expires", Value: exp}},
		"uuid data":       {{Key: "data", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}, {Key: "version", Value: int64(7)}, {Key: "expires", Value: exp}},
		"no expiry":       {{Key: "data", Value: data}, {Key: "version", Value: int64(7)}},
		"number expiry":   {{Key: "data", Value: data}, {Key: "version", Value: int64(7)}, {Key: "expires", Value: int64(exp)}},
		"string expiry":   {{Key: "data", Value: data}, {Key: "version", Value: int64(7)}, {Key: "expires", Value: "tomorrow"}},
		"null everything": {{Key: "data", Value: nil}, {Key: "version", Value: nil}, {Key: "expires", Value: nil}},
	} {
		key := "corrupt " + name
		if _, err := coll.InsertOne(ctx, append(bson.D{{Key: "_id", Value: key}}, doc...)); err != nil {
			t.Fatal(err)
		}
		liveExpiry := name != "no expiry" && name != "number expiry" && name != "string expiry" && name != "null everything"
		for _, ttl := range []time.Duration{0, time.Minute} {
			_, v, err := s.Load(ctx, key, ttl)
			switch {
			case liveExpiry && !errors.Is(err, mongostore.ErrCorrupt):
				t.Errorf("%s: Load(ttl %v) = %d, %v; want ErrCorrupt", name, ttl, v, err)
			case !liveExpiry && !errors.Is(err, store.ErrNotFound):
				t.Errorf("%s: Load(ttl %v) = %d, %v; want ErrNotFound", name, ttl, v, err)
			}
			if err != nil && strings.Contains(err.Error(), key) {
				t.Errorf("%s: the error %q shows the key", name, err)
			}
		}
		if _, err := s.Save(ctx, key, []byte("y"), 8, time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: Save(version 8) = %v; want ErrConflict", name, err)
		}
		_, err := s.Save(ctx, key, []byte("y"), 0, time.Minute)
		switch {
		case liveExpiry && !errors.Is(err, store.ErrConflict):
			t.Errorf("%s: Save(version 0) = %v; want ErrConflict", name, err)
		case !liveExpiry && err != nil:
			t.Errorf("%s: Save(version 0) over a document that is not live: %v", name, err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("%s: Delete: %v", name, err)
		}
		if _, _, err := s.Load(ctx, key, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Load after Delete = %v; want ErrNotFound", name, err)
		}
	}
}

func TestSaveRejectsNonPositiveTTL(t *testing.T) {
	t.Parallel()
	coll := newCollection(t, connect(t))
	s := mongostore.New(coll)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Save(context.Background(), "k", []byte("x"), 0, ttl); err == nil {
			t.Errorf("Save with ttl %v succeeded", ttl)
		}
	}
	if n, err := coll.CountDocuments(context.Background(), bson.D{}); err != nil || n != 0 {
		t.Fatalf("collection holds %d documents (%v) after rejected Saves", n, err)
	}
}

// TestUnacknowledgedWrites checks that Save refuses to guess under w: 0,
// where the server does not say whether the document matched.
func TestUnacknowledgedWrites(t *testing.T) {
	t.Parallel()
	coll := newCollection(t, connect(t))
	s := mongostore.New(coll.Database().Collection(coll.Name(), options.Collection().SetWriteConcern(writeconcern.Unacknowledged())))
	for _, version := range []uint64{0, 1} {
		_, err := s.Save(context.Background(), "k", []byte("x"), version, time.Minute)
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("Save(version %d) under w: 0 = %v; want an error other than ErrConflict", version, err)
		}
	}
}

// TestEnsureIndexes checks the TTL index on MongoDB. FerretDB v1 does not
// implement TTL indexes and refuses to create one; the test checks that
// the error says so, and nothing else.
func TestEnsureIndexes(t *testing.T) {
	t.Parallel()
	client := connect(t)
	coll := newCollection(t, client)
	s := mongostore.New(coll)
	ctx := context.Background()
	if isFerretDB(t, client) {
		err := s.EnsureIndexes(ctx)
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(238) { // NotImplemented
			t.Fatalf("EnsureIndexes on FerretDB = %v; want NotImplemented (FerretDB v1 has no TTL indexes)", err)
		}
		t.Logf("FerretDB has no TTL indexes: %v", err)
		return
	}
	for range 2 {
		if err := s.EnsureIndexes(ctx); err != nil {
			t.Fatalf("EnsureIndexes: %v", err)
		}
	}
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range specs {
		if spec.Name == "_id_" {
			continue
		}
		var keys bson.D
		if err := bson.Unmarshal(spec.KeysDocument, &keys); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].Key != "expires" || spec.ExpireAfterSeconds == nil || *spec.ExpireAfterSeconds != 0 {
			t.Fatalf("index %s on %v, expireAfterSeconds %v; want one on expires with 0", spec.Name, keys, spec.ExpireAfterSeconds)
		}
		return
	}
	t.Fatalf("no index besides _id_ after EnsureIndexes: %v", specs)
}

// TestConcurrentIncrements has several clients, as several application
// instances would, increment one counter with compare-and-set while others
// keep renewing it with Load. No increment may be lost, and no version may
// be handed out twice.
func TestConcurrentIncrements(t *testing.T) {
	t.Parallel()
	const (
		clients    = 4
		writers    = 3 // per client
		increments = 4 // per writer
		renewers   = 1 // per client
		maxRetries = 1000
	)
	coll := newCollection(t, connect(t))
	stores := make([]*mongostore.Store, clients)
	for i := range stores {
		stores[i] = mongostore.New(connect(t).Database(coll.Database().Name()).Collection(coll.Name()))
	}
	ctx := context.Background()
	const key = "counter"
	if _, err := stores[0].Save(ctx, key, []byte("0"), 0, time.Minute); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		versions = map[uint64]bool{}
	)
	increment := func(s *mongostore.Store) error {
		for range maxRetries {
			data, v, err := s.Load(ctx, key, time.Minute)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(string(data))
			if err != nil {
				return err
			}
			nv, err := s.Save(ctx, key, strconv.AppendInt(nil, int64(n+1), 10), v, time.Minute)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if versions[nv] {
				return errors.New("a version was handed out twice")
			}
			versions[nv] = true
			return nil
		}
		return errors.New("no successful Save in 1000 attempts")
	}

	start := time.Now()
	done := make(chan struct{})
	var writing, renewing sync.WaitGroup
	for _, s := range stores {
		for range writers {
			writing.Go(func() {
				for range increments {
					if err := increment(s); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for range renewers {
			renewing.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					if _, _, err := s.Load(ctx, key, time.Minute); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
	}
	writing.Wait()
	close(done)
	renewing.Wait()

	data, _, err := stores[0].Load(ctx, key, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := clients * writers * increments
	if string(data) != strconv.Itoa(want) {
		t.Fatalf("counter = %s after %d increments", data, want)
	}
	t.Logf("%d increments by %d goroutines on %d clients, with %d renewing, in %v",
		want, clients*writers, clients, clients*renewers, time.Since(start).Round(time.Millisecond))
}
