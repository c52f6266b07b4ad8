package ptnetmap

import "golang.org/x/sys/unix"

// pinThread binds the calling (locked) thread to cpu, best effort: a
// benchmark pins to keep its numbers steady, production leaves it to the
// scheduler.
func pinThread(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	_ = unix.SchedSetaffinity(0, &set)
}
