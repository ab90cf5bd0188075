package event

import (
	"reflect"
	"testing"
)

func TestStructuredDataGet(t *testing.T) {
	sd := StructuredData{
		{ID: "a", Params: []SDParam{{"x", "1"}, {"y", "2"}}},
		{ID: "b@1", Params: []SDParam{{"x", "3"}}},
	}
	for _, tt := range []struct {
		id, param, want string
		ok              bool
	}{
		{"a", "x", "1", true}, {"a", "y", "2", true}, {"b@1", "x", "3", true},
		{"a", "z", "", false}, {"c", "x", "", false},
	} {
		if got, ok := sd.Get(tt.id, tt.param); got != tt.want || ok != tt.ok {
			t.Errorf("Get(%q, %q) = %q, %v; want %q, %v", tt.id, tt.param, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := StructuredData(nil).Get("a", "x"); ok {
		t.Error("nil SD has no values")
	}
}

func TestSDFromMapSorted(t *testing.T) {
	got := SDFromMap(map[string]map[string]string{"z": {"b": "2", "a": "1"}, "m": {}})
	want := StructuredData{{ID: "m", Params: []SDParam{}}, {ID: "z", Params: []SDParam{{"a", "1"}, {"b", "2"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SDFromMap = %+v; want %+v", got, want)
	}
	if SDFromMap(nil) != nil {
		t.Error("empty map must give nil")
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for i := range 8 {
		if s, err := ParseSeverity(Severity(i).String()); err != nil || s != Severity(i) {
			t.Errorf("severity %d: %v %v", i, s, err)
		}
	}
	for i := range 24 {
		if f, err := ParseFacility(Facility(i).String()); err != nil || f != Facility(i) {
			t.Errorf("facility %d: %v %v", i, f, err)
		}
	}
	if _, err := ParseSeverity("loud"); err == nil {
		t.Error("unknown severity accepted")
	}
	if s, _ := ParseSeverity("warn"); s != 4 {
		t.Error("alias warn != 4")
	}
	if (&Event{Facility: 4, Severity: 3}).Priority() != 35 || (&Event{Facility: -1, Severity: 3}).Priority() != -1 {
		t.Error("Priority")
	}
}
