//go:build !linux

package benchmark

import (
	"os"
	"os/exec"
	"time"
)

func setParentDeathSignal(*exec.Cmd) {}

// ResetPeakRSS is not supported here: it reports false.
func ResetPeakRSS() bool { return false }

// PeakRSS is not measured here: 0.
func PeakRSS() int64 { return 0 }

// CPUTime is not measured here: 0.
func CPUTime() time.Duration { return 0 }

func childMaxRSS(*os.ProcessState) int64 { return 0 }
