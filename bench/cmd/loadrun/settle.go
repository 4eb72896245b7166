package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Before each round the driver waits for the machine to settle: until the
// 1-minute load average falls below -settle-load, or -settle-max has passed.
// The load a round leaves behind (Apache's 2×64 threads leave the 2-core
// machine at a load of 3 to 14) then does not land on the next one, and
// the report gives the load each round started at.

// loadAvg is the 1, 5 and 15 minute load averages of the machine.
type loadAvg [3]float64

func (l loadAvg) String() string {
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

// parseLoadAvg parses the contents of /proc/loadavg
// ("0.24 0.84 2.43 1/82 5611").
func parseLoadAvg(s string) (loadAvg, error) {
	var l loadAvg
	f := strings.Fields(s)
	if len(f) < 3 {
		return l, fmt.Errorf("load average: want 3 fields, got %q", s)
	}
	for i := range l {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 {
			return l, fmt.Errorf("load average: bad field %q in %q", f[i], s)
		}
		l[i] = v
	}
	return l, nil
}

// readLoadAvg reads the machine's load averages from /proc/loadavg.
func readLoadAvg() (loadAvg, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return loadAvg{}, err
	}
	return parseLoadAvg(string(b))
}

// settler waits for the 1-minute load average to fall below threshold, for
// at most max, reading it every poll.
type settler struct {
	threshold float64
	max       time.Duration // 0: read the load once, never wait
	poll      time.Duration
	read      func() (loadAvg, error)
	now       func() time.Time
	sleep     func(context.Context, time.Duration) error
}

// settled is what a wait found: the load averages when it ended, how long it
// took, and whether it ended at the maximum wait with the load still at or
// above the threshold.
type settled struct {
	load   loadAvg
	waited time.Duration
	maxed  bool
}

func newSettler(threshold float64, maxWait time.Duration) *settler {
	return &settler{
		threshold: threshold,
		max:       maxWait,
		poll:      time.Second, // the kernel updates the averages every 5 s
		read:      readLoadAvg,
		now:       time.Now,
		sleep:     sleepCtx,
	}
}

// wait returns once the 1-minute load average is below the threshold, or
// the maximum wait has passed, or ctx is done (with its error).
func (s *settler) wait(ctx context.Context) (settled, error) {
	start := s.now()
	for {
		l, err := s.read()
		if err != nil {
			return settled{}, err
		}
		waited := s.now().Sub(start)
		if l[0] < s.threshold {
			return settled{load: l, waited: waited}, nil
		}
		if waited >= s.max {
			return settled{load: l, waited: waited, maxed: s.max > 0}, nil
		}
		if err := s.sleep(ctx, min(s.poll, s.max-waited)); err != nil {
			return settled{load: l, waited: waited}, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
