package memstore_test

import (
	"testing"

	"github.com/ginsession/ginsession/store"
	"github.com/ginsession/ginsession/store/memstore"
	"github.com/ginsession/ginsession/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	s := memstore.New() // one Store for all subtests, as in a real program
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

func TestConformanceZeroValue(t *testing.T) {
	t.Parallel()
	var s memstore.Store
	storetest.Run(t, func(*testing.T) store.Store { return &s })
}
