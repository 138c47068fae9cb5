package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var errTransient = errors.New("transient")

func TestDo(t *testing.T) {
	p := Policy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
		Retryable: func(err error) bool { return errors.Is(err, errTransient) }}
	n := 0
	err := Do(t.Context(), p, func(context.Context) error {
		if n++; n < 3 {
			return errTransient
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Do: %v after %d calls, want success on the third", err, n)
	}
	n = 0
	permanent := errors.New("permanent")
	if err := Do(t.Context(), p, func(context.Context) error { n++; return permanent }); err != permanent || n != 1 {
		t.Fatalf("a non-retryable error: %v after %d calls", err, n)
	}
	n = 0
	err = Do(t.Context(), p, func(context.Context) error { n++; return errTransient })
	if n != 5 || !errors.Is(err, errTransient) || !strings.Contains(err.Error(), "gave up after 5 attempts") {
		t.Fatalf("exhausted: %v after %d calls", err, n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	long := Policy{MaxAttempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour}
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	err = Do(ctx, long, func(context.Context) error { return errTransient })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) || time.Since(start) > 5*time.Second {
		t.Fatalf("a cancelled backoff: %v after %v", err, time.Since(start))
	}
}

func TestBackoffAndValidate(t *testing.T) {
	p := Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: 40 * time.Millisecond}
	for attempt := 1; attempt < 10; attempt++ {
		ceiling := min(p.BaseDelay<<(attempt-1), p.MaxDelay)
		if d := p.Backoff(attempt); d < 0 || d > ceiling {
			t.Fatalf("Backoff(%d) = %v, want within [0, %v]", attempt, d, ceiling)
		}
	}
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{MaxAttempts: -1}, "retry: Policy.MaxAttempts -1 is below the minimum 0"},
		{Policy{BaseDelay: 2 * time.Second, MaxDelay: time.Second}, "retry: Policy.BaseDelay 2s is above Policy.MaxDelay 1s"},
	} {
		if err := c.p.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.p, err, c.want)
		}
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Errorf("the zero Policy: %v", err)
	}
}
