// Package bench compares ginsession with other Gin session libraries.
package bench
