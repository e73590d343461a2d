package main

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// A demoUser is one of the accounts the login page lists. A real shop
// would keep users in a database; the password handling is the real thing.
type demoUser struct {
	Name     string // login name
	Display  string // how the header greets them
	Password string // shown on the login page: this is a demo
}

// demoUsers are the accounts anyone can log in with.
var demoUsers = []demoUser{
	{Name: "alice", Display: "Alice", Password: "wonderland"},
	{Name: "bob", Display: "Bob", Password: "builder"},
}

// userDB checks logins against bcrypt hashes made at start-up.
type userDB struct {
	hashes  map[string][]byte
	display map[string]string
	dummy   []byte // compared against for unknown names, so they take as long
}

// newUserDB hashes the demo users' passwords at the given bcrypt cost.
func newUserDB(cost int) (*userDB, error) {
	db := &userDB{hashes: map[string][]byte{}, display: map[string]string{}}
	for _, u := range demoUsers {
		h, err := bcrypt.GenerateFromPassword([]byte(u.Password), cost)
		if err != nil {
			return nil, fmt.Errorf("hashing the password of %s: %w", u.Name, err)
		}
		db.hashes[u.Name] = h
		db.display[u.Name] = u.Display
	}
	h, err := bcrypt.GenerateFromPassword([]byte("no such user"), cost)
	if err != nil {
		return nil, err
	}
	db.dummy = h
	return db, nil
}

// check reports whether password is name's. It takes about as long for an
// unknown name as for a wrong password.
func (db *userDB) check(name, password string) bool {
	h, known := db.hashes[name]
	if !known {
		h = db.dummy
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil && known
}

// displayName returns how the shop greets name.
func (db *userDB) displayName(name string) string {
	if d, ok := db.display[name]; ok {
		return d
	}
	return name
}
