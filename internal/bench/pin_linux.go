package bench

import "golang.org/x/sys/unix"

// pin binds the calling thread to cpu when cpu >= 0, best effort: the two
// sides of a benchmark get a core each, as the reference does.
func pin(cpu int) {
	if cpu < 0 {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	_ = unix.SchedSetaffinity(0, &set)
}
