package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestParseLoadAvg(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    loadAvg
		wantErr bool
	}{
		{name: "proc", in: "0.24 0.84 2.43 1/82 5611\n", want: loadAvg{0.24, 0.84, 2.43}},
		{name: "three fields", in: "14.02 9.10 5.30", want: loadAvg{14.02, 9.10, 5.30}},
		{name: "empty", in: "", wantErr: true},
		{name: "two fields", in: "0.24 0.84", wantErr: true},
		{name: "not a number", in: "0.24 x 2.43 1/82 5611", wantErr: true},
		{name: "negative", in: "-1 0.84 2.43 1/82 5611", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLoadAvg(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseLoadAvg(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("parseLoadAvg(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// fakeMachine is a settler's clock and load average: each read returns the
// next of loads (the last one from then on), and a sleep moves the clock.
type fakeMachine struct {
	t      time.Time
	loads  []float64
	reads  int
	sleeps []time.Duration
}

func (m *fakeMachine) settler(threshold float64, maxWait time.Duration) *settler {
	return &settler{
		threshold: threshold,
		max:       maxWait,
		poll:      2 * time.Second,
		read: func() (loadAvg, error) {
			l := m.loads[min(m.reads, len(m.loads)-1)]
			m.reads++
			return loadAvg{l, 0, 0}, nil
		},
		now: func() time.Time { return m.t },
		sleep: func(ctx context.Context, d time.Duration) error {
			m.sleeps = append(m.sleeps, d)
			m.t = m.t.Add(d)
			return ctx.Err()
		},
	}
}

func TestSettlerWait(t *testing.T) {
	tests := []struct {
		name       string
		threshold  float64
		max        time.Duration
		loads      []float64
		wantLoad   float64
		wantWaited time.Duration
		wantMaxed  bool
		wantSleeps int
	}{
		{name: "already settled", threshold: 1, max: 90 * time.Second, loads: []float64{0.3}, wantLoad: 0.3},
		{name: "settles", threshold: 1, max: 90 * time.Second, loads: []float64{3, 2, 1, 0.99}, wantLoad: 0.99, wantWaited: 6 * time.Second, wantSleeps: 3},
		// The last sleep is cut to the time left: 2 s, 2 s, 1 s.
		{name: "maximum wait", threshold: 1, max: 5 * time.Second, loads: []float64{14, 9, 4, 3}, wantLoad: 3, wantWaited: 5 * time.Second, wantMaxed: true, wantSleeps: 3},
		{name: "no wait", threshold: 1, max: 0, loads: []float64{2.5}, wantLoad: 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &fakeMachine{t: time.Unix(1e9, 0), loads: tt.loads}
			got, err := m.settler(tt.threshold, tt.max).wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got.load[0] != tt.wantLoad || got.waited != tt.wantWaited || got.maxed != tt.wantMaxed {
				t.Errorf("wait() = load %.2f, waited %s, maxed %v; want %.2f, %s, %v",
					got.load[0], got.waited, got.maxed, tt.wantLoad, tt.wantWaited, tt.wantMaxed)
			}
			if len(m.sleeps) != tt.wantSleeps {
				t.Errorf("slept %v, want %d sleeps", m.sleeps, tt.wantSleeps)
			}
		})
	}
}

func TestSettlerWaitErrors(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		m := &fakeMachine{t: time.Unix(1e9, 0), loads: []float64{5}}
		s := m.settler(1, time.Minute)
		errRead := errors.New("no /proc")
		s.read = func() (loadAvg, error) { return loadAvg{}, errRead }
		if _, err := s.wait(context.Background()); !errors.Is(err, errRead) {
			t.Errorf("wait() error = %v, want %v", err, errRead)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		m := &fakeMachine{t: time.Unix(1e9, 0), loads: []float64{5}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := m.settler(1, time.Minute).wait(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("wait() error = %v, want %v", err, context.Canceled)
		}
		if len(m.sleeps) != 1 {
			t.Errorf("slept %v, want one sleep", m.sleeps)
		}
	})
}
