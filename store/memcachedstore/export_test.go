package memcachedstore

// ServerFor returns the address of the server of s that holds key.
func ServerFor(s *Store, key string) string {
	return serverFor(s.servers, encodeKey(s.prefix+key).text).addr
}
