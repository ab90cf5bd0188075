package rules

import (
	"slices"

	"github.com/sluicelog/sluice/router/event"
)

// Route is one compiled `route` block.
type Route struct {
	// Name is the route's label, for metrics and diagnostics.
	Name string
	// When selects the events the route applies to; nil matches every event.
	When Predicate
	// Outputs are the indices of the target outputs, as assigned by the
	// router. A route with no outputs drops the events it matches, exactly
	// as if Drop were set.
	Outputs []int
	// Drop makes matching events stop here without being sent by this
	// route (the router counts them). Drop takes precedence over Outputs
	// and Continue.
	Drop bool
	// Continue makes evaluation go on with later routes after this one
	// matched and chose its outputs.
	Continue bool
}

// entry is a Route as the hot loop needs it.
type entry struct {
	when Predicate
	outs []int
	drop bool
	cont bool
}

// Table is an immutable, compiled routing table. It is safe for concurrent
// use by any number of goroutines.
type Table struct {
	entries   []entry
	unmatched []int
}

// NewTable builds a table from routes, in evaluation order, and the output
// indices that receive events no route matched (empty: such events are
// dropped). NewTable copies its arguments; later changes to them do not
// affect the table.
func NewTable(routes []Route, unmatched []int) *Table {
	t := &Table{
		entries:   make([]entry, len(routes)),
		unmatched: slices.Clone(unmatched),
	}
	for i, r := range routes {
		t.entries[i] = entry{
			when: r.When,
			outs: slices.Clone(r.Outputs),
			drop: r.Drop || len(r.Outputs) == 0,
			cont: r.Continue,
		}
	}
	return t
}

// Len returns the number of routes in the table.
func (t *Table) Len() int { return len(t.entries) }

// Route evaluates ev against the table's routes in order.
//
// A route matches when its When is nil or returns true. The first matching
// route wins: its outputs are chosen and evaluation stops, unless the route
// has Continue, in which case its outputs are chosen and later routes are
// evaluated too. A matching route with Drop (or without outputs) stops
// evaluation and chooses nothing itself; outputs already chosen by earlier
// matching Continue routes are kept, so the event still goes to them.
//
// Route appends to outs the chosen output indices, without duplicates (an
// index already appended by this call is not appended again; what outs
// held before the call is not consulted) and in first-seen order. It
// appends to matched the index, into the routes given to NewTable, of every
// route that matched, including a dropping one. It returns both slices and
// whether the event matched no route at all; in that case outs receives
// the table's unmatched outputs (none means the event is dropped).
//
// Route does not allocate when outs and matched have enough spare capacity
// (len(routes) for matched, the number of distinct outputs for outs), nor
// do the predicates unless they call lower() or upper().
func (t *Table) Route(ev *event.Event, outs, matched []int) ([]int, []int, bool) {
	start := len(outs)
	hit := false
	for i := range t.entries {
		r := &t.entries[i]
		if r.when != nil && !r.when(ev) {
			continue
		}
		hit = true
		matched = append(matched, i)
		if r.drop {
			break
		}
		for _, o := range r.outs {
			outs = appendUnique(outs, start, o)
		}
		if !r.cont {
			break
		}
	}
	if !hit {
		for _, o := range t.unmatched {
			outs = appendUnique(outs, start, o)
		}
		return outs, matched, true
	}
	return outs, matched, false
}

// appendUnique appends o to outs unless outs[start:] already holds it.
func appendUnique(outs []int, start, o int) []int {
	for _, x := range outs[start:] {
		if x == o {
			return outs
		}
	}
	return append(outs, o)
}
