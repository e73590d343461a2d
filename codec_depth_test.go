package ginsession

import (
	"testing"
	"time"
)

// benchCart is an ordinary session value: a struct holding a slice of
// structs, three levels deep.
type benchCart struct {
	Items   []benchItem
	Coupon  string
	Updated time.Time
}

type benchItem struct {
	SKU   string
	Qty   int
	Price float64
}

func newBenchCart() benchCart {
	c := benchCart{Coupon: "SPRING", Updated: time.Unix(1700000000, 0).UTC()}
	for i := range 5 {
		c.Items = append(c.Items, benchItem{SKU: "sku-" + string(rune('a'+i)), Qty: i + 1, Price: 9.99})
	}
	return c
}

// BenchmarkCheckMsgpack measures the walk that runs before every msgpack
// decode, on ordinary values and on a cart of 50 items (1.6 kB).
func BenchmarkCheckMsgpack(b *testing.B) {
	cart50 := newBenchCart()
	for range 45 {
		cart50.Items = append(cart50.Items, cart50.Items[0])
	}
	for _, v := range []struct {
		name  string
		value any
	}{{"int", 42}, {"string", "hello, world"}, {"cart", newBenchCart()}, {"map", map[string]any{"a": []any{1, map[string]any{"b": []int{2}}}}}, {"cart50", cart50}} {
		data, err := Msgpack.Marshal(v.value)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := checkMsgpack(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMsgpack and BenchmarkJSON measure each codec on an ordinary
// value, into its own type and into any.
func BenchmarkMsgpack(b *testing.B) { benchCodec(b, Msgpack) }
func BenchmarkJSON(b *testing.B)    { benchCodec(b, JSON) }

func benchCodec(b *testing.B, codec Codec) {
	cart := newBenchCart()
	data, err := codec.Marshal(cart)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Marshal(cart); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal/struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v benchCart
			if err := codec.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal/any", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := codec.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal/int", func(b *testing.B) {
		n, _ := codec.Marshal(12345)
		b.ReportAllocs()
		for b.Loop() {
			var v int
			if err := codec.Unmarshal(n, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
