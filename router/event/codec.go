package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// Binary encoding of an Event, for durable queues. Version 1:
//
//	version   byte  (1)
//	flags     byte  bit 0: Message is the tail of Raw (stored as its length only)
//	                bit 1: SD present (even if empty)
//	received  marker byte 0 (zero time) or 1, then varint unix seconds,
//	          uvarint nanoseconds, varint zone offset in seconds
//	time      same as received
//	facility  byte (int8), severity byte (int8)
//	input, stream, origin, host, app, procid, msgid   uvarint length + bytes each
//	raw       uvarint length + bytes
//	message   uvarint length; then its bytes unless flag bit 0
//	sd        (if flag bit 1) uvarint elements; each: id, uvarint params, name, value
//
// Times keep their instant and UTC offset (the zone name is not kept).
// Decoding rejects anything malformed with an error; it never panics.
const codecVersion = 1

const (
	flagMsgTailOfRaw = 1 << 0
	flagSD           = 1 << 1
)

// ErrCodec is wrapped by every decoding error.
var ErrCodec = errors.New("malformed binary event")

// AppendBinary appends the binary encoding of e to dst and returns it. It
// allocates only to grow dst.
func (e *Event) AppendBinary(dst []byte) []byte {
	flags := byte(0)
	tail := len(e.Message) > 0 && len(e.Message) <= len(e.Raw) &&
		string(e.Raw[len(e.Raw)-len(e.Message):]) == e.Message
	if tail {
		flags |= flagMsgTailOfRaw
	}
	if e.SD != nil {
		flags |= flagSD
	}
	dst = append(dst, codecVersion, flags)
	dst = appendTime(dst, e.Received)
	dst = appendTime(dst, e.Time)
	dst = append(dst, byte(e.Facility), byte(e.Severity))
	for _, s := range [...]string{e.Input, e.Stream, e.Origin, e.Host, e.App, e.ProcID, e.MsgID} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Raw)))
	dst = append(dst, e.Raw...)
	if tail {
		dst = binary.AppendUvarint(dst, uint64(len(e.Message)))
	} else {
		dst = appendString(dst, e.Message)
	}
	if e.SD != nil {
		dst = binary.AppendUvarint(dst, uint64(len(e.SD)))
		for _, el := range e.SD {
			dst = appendString(dst, el.ID)
			dst = binary.AppendUvarint(dst, uint64(len(el.Params)))
			for _, p := range el.Params {
				dst = appendString(dst, p.Name)
				dst = appendString(dst, p.Value)
			}
		}
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0) // varint 0 alone: zero time
	}
	_, off := t.Zone()
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix()) // seconds: any year fits, unlike UnixNano
	dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
	return binary.AppendVarint(dst, int64(off))
}

// DecodeBinary decodes an Event encoded by AppendBinary. It copies b once;
// every string and Raw of the result share that copy, so b may be reused
// afterwards. The result is a new, independent Event.
func DecodeBinary(b []byte) (*Event, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCodec, len(b))
	}
	if b[0] != codecVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrCodec, b[0])
	}
	buf := make([]byte, len(b))
	copy(buf, b)
	e := &Event{}
	if err := e.decodeShared(buf); err != nil {
		return nil, err
	}
	return e, nil
}

// UnmarshalShared decodes b (encoded by AppendBinary) into e without
// copying: e's strings and Raw alias b, so the caller hands b over and must
// never modify it afterwards. It lets a queue decode a batch of records it
// owns into one slab of events with no per-event copy.
func (e *Event) UnmarshalShared(b []byte) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: %d bytes", ErrCodec, len(b))
	}
	if b[0] != codecVersion {
		return fmt.Errorf("%w: unknown version %d", ErrCodec, b[0])
	}
	*e = Event{}
	return e.decodeShared(b)
}

func (e *Event) decodeShared(buf []byte) error {
	d := decoder{b: buf, pos: 2}
	flags := buf[1]
	e.Received = d.time()
	e.Time = d.time()
	e.Facility, e.Severity = Facility(int8(d.byte())), Severity(int8(d.byte()))
	for _, p := range [...]*string{&e.Input, &e.Stream, &e.Origin, &e.Host, &e.App, &e.ProcID, &e.MsgID} {
		*p = d.string()
	}
	if raw := d.bytes(); len(raw) > 0 {
		e.Raw = raw[:len(raw):len(raw)]
	}
	if flags&flagMsgTailOfRaw != 0 {
		n := d.uvarint()
		if d.err == nil && (n == 0 || n > uint64(len(e.Raw))) {
			d.fail("message length %d exceeds raw length %d", n, len(e.Raw))
		}
		if d.err == nil {
			e.Message = unsafe.String(&e.Raw[len(e.Raw)-int(n)], int(n))
		}
	} else {
		e.Message = d.string()
	}
	if flags&flagSD != 0 {
		n := d.count()
		e.SD = make(StructuredData, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			el := SDElement{ID: d.string()}
			m := d.count()
			el.Params = make([]SDParam, 0, m)
			for j := 0; j < m && d.err == nil; j++ {
				el.Params = append(el.Params, SDParam{Name: d.string(), Value: d.string()})
			}
			e.SD = append(e.SD, el)
		}
	}
	if d.err == nil && d.pos != len(buf) {
		d.fail("%d trailing bytes", len(buf)-d.pos)
	}
	return d.err
}

type decoder struct {
	b   []byte
	pos int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrCodec, d.pos, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.pos >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	d.pos++
	return d.b[d.pos-1]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.pos:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.pos += n
	return v
}

// count reads an element count, bounded by the bytes left (each element
// takes at least one byte), so a hostile count cannot allocate much.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)-d.pos) {
		d.fail("count %d exceeds remaining bytes", n)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.pos) {
		d.fail("length %d exceeds remaining %d bytes", n, len(d.b)-d.pos)
		return nil
	}
	s := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return s
}

// string aliases the decoder's private copy: immutable once decoded.
func (d *decoder) string() string {
	s := d.bytes()
	if len(s) == 0 {
		return ""
	}
	return unsafe.String(&s[0], len(s))
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec, ns, off := d.varint(), d.uvarint(), d.varint()
		if d.err != nil {
			return time.Time{}
		}
		if ns >= 1e9 {
			d.fail("nanoseconds %d out of range", ns)
			return time.Time{}
		}
		if off < -24*3600 || off > 24*3600 {
			d.fail("zone offset %d out of range", off)
			return time.Time{}
		}
		loc := time.UTC
		if off != 0 {
			loc = time.FixedZone("", int(off))
		}
		return time.Unix(sec, int64(ns)).In(loc)
	default:
		d.fail("bad time marker")
		return time.Time{}
	}
}
