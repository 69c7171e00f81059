package referral

import (
	"slices"
	"testing"
	"time"
)

// TestOutcomesAreRecordedInGroups: an outcome waits for its group to fill,
// or for the delay, before its group is recorded; wait records what is
// left and returns once every group has been recorded.
func TestOutcomesAreRecordedInGroups(t *testing.T) {
	t.Parallel()
	recorded := make(chan []string, 8)
	record := func(group []outcome) {
		var ids []string
		for _, x := range group {
			ids = append(ids, x.inv.ID)
		}
		recorded <- ids
	}
	next := func() []string {
		t.Helper()
		select {
		case ids := <-recorded:
			return ids
		case <-time.After(5 * time.Second):
			t.Fatal("no group was recorded")
			return nil
		}
	}
	nothingYet := func() {
		t.Helper()
		select {
		case ids := <-recorded:
			t.Fatalf("recorded %v before the group was full", ids)
		default:
		}
	}

	o := &outcomes{size: 3, delay: time.Hour, record: record}
	o.add(Invite{ID: "a"}, nil)
	o.add(Invite{ID: "b"}, nil)
	nothingYet()
	o.mu.Lock()
	waiting := len(o.pending)
	o.mu.Unlock()
	if waiting != 2 {
		t.Fatalf("%d outcomes wait, want 2", waiting)
	}
	o.add(Invite{ID: "c"}, nil)
	if got := next(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("recorded %v, want [a b c] in one group", got)
	}

	o.add(Invite{ID: "d"}, nil)
	o.wait()
	select {
	case got := <-recorded:
		if !slices.Equal(got, []string{"d"}) {
			t.Fatalf("recorded %v, want [d]", got)
		}
	default:
		t.Fatal("wait returned before the last group was recorded")
	}

	// One alone is recorded after the delay, with no wait.
	o = &outcomes{size: 3, delay: time.Millisecond, record: record}
	o.add(Invite{ID: "e"}, nil)
	if got := next(); !slices.Equal(got, []string{"e"}) {
		t.Fatalf("recorded %v, want [e]", got)
	}
	o.wait()
}
