package sessions

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/ginsession/ginsession"
)

// value is what the Session interface stores under a key: the stored
// value's type, named as typeName names it, and the value itself,
// encoded with msgpack. Get rebuilds the type from T, so that an int
// comes back as an int although ginsession's own accessors need the type
// from the caller.
type value struct {
	//lint:ignore U1000 msgpack reads its tag: encode as an array
	_msgpack struct{} `msgpack:",as_array"`

	T string             // see typeName; "" for a type it cannot name, "nil" for nil
	V msgpack.RawMessage // the value; for the types of anyContainer, its elements as values
}

// flashItem is a flash message queued through the Session interface: the
// flash key it was added under, and the message as a value.
type flashItem struct {
	//lint:ignore U1000 msgpack reads its tag: encode as an array
	_msgpack struct{} `msgpack:",as_array"`

	K string // the flash key: "_flash" or AddFlash's vars[0]
	T string
	V msgpack.RawMessage
}

// Limits on a stored type name, which comes from the store: a damaged or
// foreign entry must not make Get build a huge type.
const (
	maxTypeName  = 1 << 10
	maxTypeDepth = 32
	maxArrayLen  = 1 << 16
)

const nilType = "nil"

// msgpackNil is msgpack's encoding of nil, kept for a nil slice or map of
// any so that it comes back nil.
var msgpackNil = msgpack.RawMessage{0xc0}

var (
	anyType = reflect.TypeFor[any]()

	// basicTypes are the predeclared types, by the name typeName gives.
	basicTypes = map[string]reflect.Type{}

	registry struct {
		sync.RWMutex
		byName map[string]reflect.Type
		byType map[reflect.Type]string
	}
)

func init() {
	for _, v := range []any{
		false, "",
		int(0), int8(0), int16(0), int32(0), int64(0),
		uint(0), uint8(0), uint16(0), uint32(0), uint64(0),
		float32(0), float64(0),
	} {
		t := reflect.TypeOf(v)
		basicTypes[t.Name()] = t
	}
	registry.byName = make(map[string]reflect.Type)
	registry.byType = make(map[reflect.Type]string)
	Register(time.Time{})
	Register(time.Duration(0))
	Register(gin.H{})
}

// Register makes values of value's type, a named type such as a struct,
// come back from Get as that type, in this request and in later ones:
// call it once at start-up for every such type the program stores, where
// code written for gin-contrib/sessions called gob.Register. Pointers to
// it, and slices, arrays and maps of it, come back as what they were too.
// A type stored without being registered comes back in its generic form:
// a struct as map[string]any, a named string as string, a named integer
// as int64 (see the package documentation).
//
// The type is recorded under its import path and name, such as
// "example.com/shop.User"; RegisterName records it under another name.
// Two types declared inside functions of one package may share that name:
// register types declared at package level.
// value may be a pointer: the type it points to is registered. Register
// panics on nil, on a type without a name that values could not be
// rebuilt from anyway (an anonymous struct, a func, a channel, an
// interface), and on a name already registered for another type.
// Unnamed types built from predeclared and registered types, such as
// []string or map[string]any, need no registration; registering one does
// nothing.
func Register(value any) {
	t := registrable(value)
	if t == nil {
		return
	}
	RegisterName(t.PkgPath()+"."+t.Name(), value)
}

// RegisterName is Register with the name to record the type under, for a
// type that moved to another package or was renamed: register the new type
// under the old name to keep reading sessions stored before. The name must
// not be empty, start with '*', '[' or "map[", nor be a predeclared type's.
func RegisterName(name string, value any) {
	t := registrable(value)
	if t == nil {
		return
	}
	if name == "" || name == nilType || name == "any" || name[0] == '*' || name[0] == '[' ||
		strings.HasPrefix(name, "map[") || basicTypes[name] != nil || len(name) > maxTypeName {
		panic(fmt.Sprintf("sessions: RegisterName: %q cannot name a type", name))
	}
	registry.Lock()
	defer registry.Unlock()
	if old, ok := registry.byName[name]; ok && old != t {
		panic(fmt.Sprintf("sessions: RegisterName: %q is registered for %v already, not %v", name, old, t))
	}
	if old, ok := registry.byType[t]; ok && old != name {
		panic(fmt.Sprintf("sessions: RegisterName: %v is registered as %q already", t, old))
	}
	registry.byName[name] = t
	registry.byType[t] = name
}

// registrable returns the named type to register for value, or nil if its
// type needs no registration.
func registrable(value any) reflect.Type {
	if value == nil {
		panic("sessions: Register: nil value")
	}
	t := reflect.TypeOf(value)
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		t = t.Elem()
	}
	if t.Name() == "" || t.PkgPath() == "" {
		if _, ok := typeName(t); ok {
			return nil // built from known types: nothing to do
		}
		panic(fmt.Sprintf("sessions: Register: values of type %v cannot be rebuilt: give the type a name, or register the named types it is made of", t))
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		panic(fmt.Sprintf("sessions: Register: values of type %v cannot be stored", t))
	}
	return t
}

// typeName returns the name under which values of type t are stored, and
// false if Get could not rebuild t from a name: t is then stored without
// one and comes back in its generic form.
func typeName(t reflect.Type) (string, bool) {
	return typeNameDepth(t, 0)
}

func typeNameDepth(t reflect.Type, depth int) (string, bool) {
	if depth > maxTypeDepth {
		return "", false
	}
	if t.Name() != "" {
		if t.PkgPath() == "" {
			if basicTypes[t.Name()] == t {
				return t.Name(), true
			}
			return "", false // error, or another predeclared interface
		}
		registry.RLock()
		name, ok := registry.byType[t]
		registry.RUnlock()
		return name, ok
	}
	var prefix string
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return "any", true
		}
		return "", false
	case reflect.Pointer:
		prefix = "*"
	case reflect.Slice:
		prefix = "[]"
	case reflect.Array:
		if t.Len() > maxArrayLen {
			return "", false
		}
		prefix = "[" + strconv.Itoa(t.Len()) + "]"
	case reflect.Map:
		k, ok := typeNameDepth(t.Key(), depth+1)
		if !ok {
			return "", false
		}
		prefix = "map[" + k + "]"
	default:
		return "", false // an anonymous struct, a func, a channel
	}
	elem, ok := typeNameDepth(t.Elem(), depth+1)
	if !ok {
		return "", false
	}
	name := prefix + elem
	return name, len(name) <= maxTypeName
}

// parseType returns the type typeName named name, and false if there is
// none in this program (a type registered by another program, or by
// another version of this one).
func parseType(name string) (reflect.Type, bool) {
	if len(name) > maxTypeName {
		return nil, false
	}
	return parseTypeDepth(name, 0)
}

func parseTypeDepth(name string, depth int) (reflect.Type, bool) {
	if depth > maxTypeDepth {
		return nil, false
	}
	if t, ok := basicTypes[name]; ok {
		return t, true
	}
	if name == "any" {
		return anyType, true
	}
	registry.RLock()
	t, ok := registry.byName[name]
	registry.RUnlock()
	if ok {
		return t, true
	}
	switch {
	case strings.HasPrefix(name, "*"):
		elem, ok := parseTypeDepth(name[1:], depth+1)
		if !ok {
			return nil, false
		}
		return reflect.PointerTo(elem), true
	case strings.HasPrefix(name, "[]"):
		elem, ok := parseTypeDepth(name[2:], depth+1)
		if !ok {
			return nil, false
		}
		return reflect.SliceOf(elem), true
	case strings.HasPrefix(name, "map["):
		end := closingBracket(name, len("map"))
		if end < 0 {
			return nil, false
		}
		key, ok := parseTypeDepth(name[len("map["):end], depth+1)
		if !ok || !key.Comparable() {
			return nil, false
		}
		elem, ok := parseTypeDepth(name[end+1:], depth+1)
		if !ok {
			return nil, false
		}
		return reflect.MapOf(key, elem), true
	case strings.HasPrefix(name, "["):
		end := strings.IndexByte(name, ']')
		if end < 0 {
			return nil, false
		}
		n, err := strconv.Atoi(name[1:end])
		if err != nil || n < 0 || n > maxArrayLen {
			return nil, false
		}
		elem, ok := parseTypeDepth(name[end+1:], depth+1)
		if !ok {
			return nil, false
		}
		return reflect.ArrayOf(n, elem), true
	}
	return nil, false
}

// closingBracket returns the index of the ']' matching the '[' at
// name[open], or -1.
func closingBracket(name string, open int) int {
	depth := 0
	for i := open; i < len(name); i++ {
		switch name[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// anyContainer reports whether t holds its elements as any: a slice of
// any, or a map from a string type to any (gin.H among them). Their
// elements are stored as values, so that each comes back as its own type.
func anyContainer(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem() == anyType
	case reflect.Map:
		return t.Key().Kind() == reflect.String && t.Elem() == anyType
	}
	return false
}

// encode makes v a value.
func encode(v any) (value, error) {
	return encodeDepth(v, 0)
}

func encodeDepth(v any, depth int) (value, error) {
	if v == nil {
		return value{T: nilType}, nil
	}
	t := reflect.TypeOf(v)
	name, ok := typeName(t)
	if !ok || !anyContainer(t) {
		raw, err := ginsession.Msgpack.Marshal(v)
		if err != nil {
			return value{}, err
		}
		return value{T: name, V: raw}, nil
	}
	if depth >= maxTypeDepth {
		return value{}, fmt.Errorf("sessions: value nested more than %d levels deep", maxTypeDepth)
	}
	rv := reflect.ValueOf(v)
	var elems any
	if t.Kind() == reflect.Slice {
		if rv.IsNil() {
			return value{T: name, V: msgpackNil}, nil
		}
		list := make([]value, rv.Len())
		for i := range list {
			e, err := encodeDepth(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return value{}, err
			}
			list[i] = e
		}
		elems = list
	} else {
		if rv.IsNil() {
			return value{T: name, V: msgpackNil}, nil
		}
		m := make(map[string]value, rv.Len())
		for iter := rv.MapRange(); iter.Next(); {
			e, err := encodeDepth(iter.Value().Interface(), depth+1)
			if err != nil {
				return value{}, err
			}
			m[iter.Key().String()] = e
		}
		elems = m
	}
	raw, err := ginsession.Msgpack.Marshal(elems)
	if err != nil {
		return value{}, err
	}
	return value{T: name, V: raw}, nil
}

// decode rebuilds what encode encoded. A value whose type this program
// cannot rebuild comes back in its generic form, as msgpack decodes it
// into an any: int64, uint64, float64, string, []byte, bool, []any,
// map[string]any, time.Time.
func (v value) decode() any {
	return v.decodeDepth(0)
}

func (v value) decodeDepth(depth int) any {
	if v.T == nilType {
		return nil
	}
	if len(v.V) == 0 {
		v.V = msgpackNil // msgpack decodes a RawMessage holding nil as empty
	}
	t, ok := parseType(v.T)
	if ok && anyContainer(t) && depth < maxTypeDepth {
		if out, ok := decodeContainer(t, v.V, depth); ok {
			return out
		}
	} else if ok {
		p := reflect.New(t)
		if ginsession.Msgpack.Unmarshal(v.V, p.Interface()) == nil {
			return p.Elem().Interface()
		}
	}
	var generic any
	if ginsession.Msgpack.Unmarshal(v.V, &generic) != nil {
		return nil
	}
	return generic
}

// decodeContainer decodes the elements of a slice or map of any.
func decodeContainer(t reflect.Type, raw []byte, depth int) (any, bool) {
	if string(raw) == string(msgpackNil) {
		return reflect.Zero(t).Interface(), true
	}
	if t.Kind() == reflect.Slice {
		var list []value
		if ginsession.Msgpack.Unmarshal(raw, &list) != nil {
			return nil, false
		}
		out := reflect.MakeSlice(t, len(list), len(list))
		for i, e := range list {
			if d := e.decodeDepth(depth + 1); d != nil {
				out.Index(i).Set(reflect.ValueOf(d))
			}
		}
		return out.Interface(), true
	}
	var m map[string]value
	if ginsession.Msgpack.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	out := reflect.MakeMapWithSize(t, len(m))
	for k, e := range m {
		d := reflect.Zero(anyType)
		if x := e.decodeDepth(depth + 1); x != nil {
			d = reflect.ValueOf(x)
		}
		out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), d)
	}
	return out.Interface(), true
}
