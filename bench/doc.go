// Package bench compares ginsession with other Gin session libraries on
// the same routes and the same Redis. It holds only tests and benchmarks;
// it is its own module so that none of the libraries it measures become
// dependencies of ginsession's users.
//
// Run everything, with its own Redis and benchstat, with
//
//	bench/run.sh
//
// or one benchmark against a Redis of your own with
//
//	GINSESSION_REDIS_URL=redis://127.0.0.1:6379/9 go test -run '^$' -bench . ./bench/
//
// See README.md for what each contender does per request.
package bench
