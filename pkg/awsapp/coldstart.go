package awsapp

import (
	"bytes"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// initClock times the steps of a cold start (Load, then App with its
// options), logged at debug level as one "cold start" line: how long the
// process had run when Load began (the Go runtime and package
// initialization: libphonenumber's metadata in the votes function, the
// SDK's endpoint tables), then each step.
type initClock struct {
	begin, last time.Time
	attrs       []any
}

func newInitClock() *initClock {
	now := time.Now()
	c := &initClock{begin: now, last: now}
	if age, ok := processAge(); ok {
		c.attrs = append(c.attrs, "before_main_ms", ms(age))
	}
	return c
}

// step records the time since the previous step as name_ms.
func (c *initClock) step(name string) {
	if c == nil {
		return
	}
	now := time.Now()
	c.attrs = append(c.attrs, name+"_ms", ms(now.Sub(c.last)))
	c.last = now
}

// log writes the steps and their total.
func (c *initClock) log(l *slog.Logger) {
	if c == nil || l == nil {
		return
	}
	l.Debug("cold start", append(c.attrs, "total_ms", ms(time.Since(c.begin)))...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// processAge is how long the process has run, from /proc (Linux; to the
// kernel's clock tick, 10 ms): its start time in ticks since boot against
// the uptime.
func processAge() (time.Duration, bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	const startTime = 22 - 3 // field 22, counted from field 3
	if len(fields) <= startTime {
		return 0, false
	}
	ticks, err := strconv.ParseFloat(string(fields[startTime]), 64)
	if err != nil {
		return 0, false
	}
	upFields := bytes.Fields(up)
	if len(upFields) == 0 {
		return 0, false
	}
	uptime, err := strconv.ParseFloat(string(upFields[0]), 64)
	if err != nil {
		return 0, false
	}
	const clockTicks = 100 // USER_HZ on Linux
	age := time.Duration((uptime - ticks/clockTicks) * float64(time.Second))
	return max(age, 0), true
}
