package event

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleEvent() *Event {
	raw := []byte(`<165>1 2003-10-11T22:14:15.003-07:00 host app 42 ID47 [ex@1 a="1" b="2"] the message`)
	return &Event{
		Received: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC),
		Time:     time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.FixedZone("", -7*3600)),
		Input:    "edge", Stream: "syslog", Origin: "10.0.0.1:514",
		Facility: 20, Severity: 5, Host: "host", App: "app", ProcID: "42", MsgID: "ID47",
		Message: "the message",
		SD:      StructuredData{{ID: "ex@1", Params: []SDParam{{"a", "1"}, {"b", "2"}}}},
		Raw:     raw,
	}
}

func assertSame(t *testing.T, want, got *Event) {
	t.Helper()
	if !want.Received.Equal(got.Received) || !want.Time.Equal(got.Time) {
		t.Fatalf("times: got %v %v; want %v %v", got.Received, got.Time, want.Received, want.Time)
	}
	_, wo := want.Time.Zone()
	_, go_ := got.Time.Zone()
	if wo != go_ || want.Time.IsZero() != got.Time.IsZero() || want.Received.IsZero() != got.Received.IsZero() {
		t.Fatalf("time zone/zero-ness differs: %v vs %v", want.Time, got.Time)
	}
	w, g := *want, *got
	w.Received, w.Time, g.Received, g.Time = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(w.Raw) == 0 && len(g.Raw) == 0 {
		w.Raw, g.Raw = nil, nil
	}
	if !reflect.DeepEqual(w, g) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", g, w)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	full := sampleEvent()
	notTail := sampleEvent()
	notTail.Message = "different from raw"
	empty := &Event{Facility: -1, Severity: -1}
	emptySD := sampleEvent()
	emptySD.SD = StructuredData{}
	farFuture := sampleEvent()
	farFuture.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 14*3600))
	farPast := sampleEvent()
	farPast.Time = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)
	for name, ev := range map[string]*Event{"full": full, "message not in raw": notTail, "empty": empty, "empty sd": emptySD,
		"year 9999": farFuture, "year 1": farPast} {
		t.Run(name, func(t *testing.T) {
			b := ev.AppendBinary(nil)
			got, err := DecodeBinary(b)
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, ev, got)
			// The decoded event owns its memory: scribbling on b changes nothing.
			for i := range b {
				b[i] = 0xAA
			}
			assertSame(t, ev, got)
		})
	}
	// UnmarshalShared gives the same event without copying.
	var shared Event
	if err := shared.UnmarshalShared(full.AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, full, &shared)
	if err := shared.UnmarshalShared([]byte{7, 0}); !errors.Is(err, ErrCodec) {
		t.Errorf("UnmarshalShared of a bad version = %v", err)
	}
	// The message-is-tail-of-raw form saves the message bytes.
	if a, b := len(full.AppendBinary(nil)), len(notTail.AppendBinary(nil)); a >= b {
		t.Errorf("tail form %d bytes, copy form %d: the tail form should be smaller", a, b)
	}
}

func TestBinaryRejectsMalformed(t *testing.T) {
	good := sampleEvent().AppendBinary(nil)
	cases := map[string][]byte{
		"empty":           nil,
		"bad version":     append([]byte{9}, good[1:]...),
		"truncated":       good[:len(good)/2],
		"trailing":        append(append([]byte{}, good...), 0),
		"huge length":     {1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad time marker": {1, 0, 7},
	}
	for name, b := range cases {
		if _, err := DecodeBinary(b); !errors.Is(err, ErrCodec) {
			t.Errorf("%s: err = %v; want ErrCodec", name, err)
		}
	}
}

func TestAppendBinaryDoesNotAllocate(t *testing.T) {
	ev := sampleEvent()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = ev.AppendBinary(buf[:0]) }); n != 0 {
		t.Fatalf("AppendBinary allocates %v times", n)
	}
}

func FuzzBinary(f *testing.F) {
	f.Add(sampleEvent().AppendBinary(nil), "raw <13>1 - h a - - - msg", "msg", int64(1), int32(3600), true)
	f.Add([]byte{1, 0}, "", "", int64(0), int32(0), false)
	f.Fuzz(func(t *testing.T, data []byte, raw, msg string, ns int64, off int32, withSD bool) {
		// Arbitrary bytes never panic and either decode or fail with ErrCodec.
		if ev, err := DecodeBinary(data); err != nil && !errors.Is(err, ErrCodec) {
			t.Fatalf("error %v does not wrap ErrCodec", err)
		} else if err == nil {
			// Whatever decodes re-encodes to an equivalent event.
			again, err := DecodeBinary(ev.AppendBinary(nil))
			if err != nil {
				t.Fatalf("re-encoding a decoded event failed: %v", err)
			}
			assertSame(t, ev, again)
		}
		// Built events round-trip exactly.
		off %= 24 * 3600
		ev := &Event{Received: time.Unix(0, ns).UTC(), Time: time.Unix(ns, int64(uint32(off)%1e9)).In(time.FixedZone("", int(off))),
			Raw: []byte(raw), Message: msg, Host: string(data), Facility: Facility(int8(ns)), Severity: Severity(int8(off))}
		if withSD {
			ev.SD = StructuredData{{ID: msg, Params: []SDParam{{raw, string(data)}}}}
		}
		got, err := DecodeBinary(ev.AppendBinary(nil))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		assertSame(t, ev, got)
		if !bytes.Equal(got.Raw, ev.Raw) {
			t.Fatal("raw differs")
		}
	})
}

func BenchmarkBinary(b *testing.B) {
	ev := sampleEvent()
	buf := ev.AppendBinary(nil)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = ev.AppendBinary(buf[:0])
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeBinary(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
