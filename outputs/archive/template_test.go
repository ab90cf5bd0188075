package archive

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/conf"
	"github.com/sluicelog/sluice/outputs"
	"github.com/sluicelog/sluice/router/event"
)

func TestTemplateRender(t *testing.T) {
	ts := time.Date(2026, 3, 5, 7, 8, 9, 0, time.UTC)
	ev := func(mod func(*event.Event)) *event.Event {
		e := &event.Event{Time: ts, Stream: "syslog", Input: "edge", Host: "web-1", App: "nginx",
			Facility: 4, Severity: 3, ProcID: "42", MsgID: "ID1"}
		if mod != nil {
			mod(e)
		}
		return e
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tmpl string
		ev         *event.Event
		loc        *time.Location
		want       string
	}{
		{"all-time", "%Y/%m/%d/%H/%M/%S/%j/%y/100%%", ev(nil), nil, "2026/03/05/07/08/09/064/26/100%"},
		{"all-fields", "{stream}/{input}/{host}/{app}/{facility}/{severity}/{procid}/{msgid}.log", ev(nil), nil,
			"syslog/edge/web-1/nginx/auth/err/42/ID1.log"},
		{"design-example", "archive/{stream}/%Y/%m/%d/%H.log.gz", ev(nil), nil, "archive/syslog/2026/03/05/07.log.gz"},
		{"timezone", "%Y-%m-%dT%H", ev(func(e *event.Event) { e.Time = time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC) }), berlin, "2027-01-01T00"},
		{"event-zone-ignored", "%H", ev(func(e *event.Event) { e.Time = ts.In(berlin) }), nil, "07"},
		{"small-year", "%Y %y", ev(func(e *event.Event) { e.Time = time.Date(7, 1, 1, 0, 0, 0, 0, time.UTC) }), nil, "0007 07"},
		{"slash", "x/{host}", ev(func(e *event.Event) { e.Host = "a/b/../c" }), nil, "x/a_b_.._c"},
		{"dotdot", "x/{host}/y", ev(func(e *event.Event) { e.Host = ".." }), nil, "x/_./y"},
		{"dot", "x/{host}/y", ev(func(e *event.Event) { e.Host = "." }), nil, "x/_/y"},
		{"hidden", "x/{host}", ev(func(e *event.Event) { e.Host = ".ssh" }), nil, "x/_ssh"},
		{"nul-and-control", "x/{app}", ev(func(e *event.Event) { e.App = "a\x00b\nc\x7f" }), nil, "x/a_b_c_"},
		{"empty", "x/{app}/{procid}", ev(func(e *event.Event) { e.App, e.ProcID = "", "" }), nil, "x/-/-"},
		{"unknown-facility", "{facility}.{severity}", ev(func(e *event.Event) { e.Facility, e.Severity = -1, -1 }), nil, "-.-"},
		{"long", "{host}", ev(func(e *event.Event) { e.Host = strings.Repeat("h", 300) }), nil, strings.Repeat("h", maxFieldLen)},
		{"long-utf8", "{host}", ev(func(e *event.Event) { e.Host = "h" + strings.Repeat("é", 100) }), nil, "h" + strings.Repeat("é", 63)},
		{"unicode-kept", "{host}", ev(func(e *event.Event) { e.Host = "höst" }), nil, "höst"},
		{"prefix-dot-in-middle", "x.{host}", ev(func(e *event.Event) { e.Host = ".h" }), nil, "x._h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := compileTemplate(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			loc := tc.loc
			if loc == nil {
				loc = time.UTC
			}
			if got := string(tmpl.render(nil, tc.ev, loc)); got != tc.want {
				t.Errorf("render = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"", "must not be empty"},
		{"%Y/%Q.log", "unknown directive %Q"},
		{"x%", "trailing %"},
		{"{nope}.log", "unknown field {nope}"},
		{"{host.log", "unterminated {"},
		{"logs/%Y/", "must name a file"},
	} {
		_, err := compileTemplate(tc.tmpl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("compileTemplate(%q) = %v, want error containing %q", tc.tmpl, err, tc.want)
		}
	}
}

// TestTimeRange checks that every second in the cached range renders like
// the time that produced it, and the seconds just outside differ, across
// zones with DST and non-hour offsets.
func TestTimeRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, zone := range []string{"UTC", "Europe/Berlin", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, tmplStr := range []string{"%Y/%m/%d/%H", "%M", "%S", "%j", "{host}"} {
			tmpl, err := compileTemplate(tmplStr)
			if err != nil {
				t.Fatal(err)
			}
			render := func(u int64) string {
				return string(tmpl.render(nil, &event.Event{Time: time.Unix(u, 0)}, loc))
			}
			// Random times, plus the 2026 DST changes in Europe.
			times := []int64{1774746000 - 1, 1774746000, 1792890000 - 1, 1792890000}
			for range 200 {
				times = append(times, 1767225600+r.Int64N(365*86400))
			}
			for _, u := range times {
				lo, hi := tmpl.timeRange(time.Unix(u, 0), loc)
				if lo > u || hi <= u {
					t.Fatalf("%s %q: range [%d,%d) misses %d", zone, tmplStr, lo, hi, u)
				}
				if tmpl.gran == 0 {
					continue
				}
				want := render(u)
				for _, v := range []int64{lo, hi - 1, (lo + hi) / 2} {
					if got := render(v); got != want {
						t.Fatalf("%s %q: %d renders %q but %d in the same range renders %q", zone, tmplStr, u, want, v, got)
					}
				}
			}
		}
	}
}

func TestConfigValidation(t *testing.T) {
	valid := func() *Config {
		c := DefaultConfig()
		c.Path = "archive/{stream}/%Y/%m/%d/%H.log.gz"
		return c
	}
	if _, err := New(valid(), outputs.Env{}); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"path", func(c *Config) { c.Path = "" }},
		{"path", func(c *Config) { c.Path = "%Q" }},
		{"path", func(c *Config) { c.Path = "{bogus}" }},
		{"compression", func(c *Config) { c.Compression = "zstd" }},
		{"level", func(c *Config) { c.Level = 0 }},
		{"level", func(c *Config) { c.Level = 10 }},
		{"format", func(c *Config) { c.Format = "xml" }},
		{"timezone", func(c *Config) { c.Timezone = "Mars/Olympus" }},
		{"max_file_size", func(c *Config) { c.MaxFileSize = "lots" }},
		{"max_file_size", func(c *Config) { c.MaxFileSize = "-1GiB" }},
		{"idle_timeout", func(c *Config) { c.IdleTimeout = "soon" }},
		{"idle_timeout", func(c *Config) { c.IdleTimeout = "-1s" }},
		{"max_open_files", func(c *Config) { c.MaxOpenFiles = 0 }},
		{"file_mode", func(c *Config) { c.FileMode = "rw-r-----" }},
		{"file_mode", func(c *Config) { c.FileMode = "01777" }},
		{"file_mode", func(c *Config) { c.FileMode = "0400" }},
	} {
		c := valid()
		tc.mod(c)
		_, err := New(c, outputs.Env{})
		var fe *conf.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: got %v, want a FieldError for %q", c, err, tc.field)
		}
	}

	// Several bad keys are all reported.
	c := valid()
	c.Compression, c.Format, c.MaxOpenFiles = "lz4", "yaml", -1
	_, err := New(c, outputs.Env{})
	for _, f := range []string{"compression", "format", "max_open_files"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("joined error %v lacks %s", err, f)
		}
	}

	// Accepted spellings.
	for _, mod := range []func(*Config){
		func(c *Config) { c.Compression, c.Format, c.Timezone = "none", "json", "Local" },
		func(c *Config) { c.Timezone, c.MaxFileSize, c.IdleTimeout = "Europe/Berlin", "1GiB", "0" },
		func(c *Config) {
			c.Compression, c.Format, c.Timezone, c.MaxFileSize, c.IdleTimeout, c.FileMode = "", "", "", "", "", ""
		},
		func(c *Config) { c.Level, c.Format, c.FileMode = 9, "rfc5424", "600" },
	} {
		c := valid()
		mod(c)
		if _, err := New(c, outputs.Env{}); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestPartPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		n    int
		want string
	}{
		{"a/13.log.gz", 0, "a/13.log.gz"},
		{"a/13.log.gz", 1, "a/13.1.log.gz"},
		{"a/13.log", 2, "a/13.2.log"},
		{"a/13.gz", 3, "a/13.3.gz"},
		{"a/13", 4, "a/13.4"},
		{"a.d/x.y.log.gz", 5, "a.d/x.y.5.log.gz"},
		{"a/.log", 1, "a/.log.1"},
	} {
		if got := partPath(tc.path, tc.n); got != tc.want {
			t.Errorf("partPath(%q, %d) = %q, want %q", tc.path, tc.n, got, tc.want)
		}
	}
}
