package conf

import (
	"errors"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"65536", 65536, false},
		{"64KiB", 64 << 10, false},
		{"64MiB", 64 << 20, false},
		{"20GiB", 20 << 30, false},
		{"1.5GiB", 3 << 29, false},
		{"10MB", 10_000_000, false},
		{"8K", 8192, false},
		{"100B", 100, false},
		{" 2 MiB ", 2 << 20, false},
		{"", 0, true},
		{"abc", 0, true},
		{"-1MiB", 0, true},
		{"12XB", 0, true},
		{"NaN", 0, true},
		{"1e30TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"1s", time.Second, false},
		{"500ms", 500 * time.Millisecond, false},
		{"0", 0, false},
		{"1h30m", 90 * time.Minute, false},
		{"-1s", 0, true},
		{"soon", 0, true},
		{"10", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFieldErrorWraps(t *testing.T) {
	base := errors.New("boom")
	err := Field("queue.max_size", base)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "queue.max_size" || !errors.Is(err, base) {
		t.Fatalf("Field() = %v; want FieldError wrapping base", err)
	}
	if Field("x", nil) != nil {
		t.Fatal("Field(x, nil) must be nil")
	}
}
