// Package testnet builds throwaway Linux test hosts for the AF_XDP backend:
// network namespaces joined by veth pairs, removed again however the test
// ends.
//
// Everything it creates is named "ptb-NAME-PID", so a leak can be traced to
// the process that made it and Leftovers can tell stale entries (dead PID)
// from live ones. Namespaces are bind-mounted at /run/netns/NAME, so while a
// test or demo runs, `ip netns list`, `ip -n NAME link` and `ip netns exec`
// see them.
//
// Cleanup is the caller's: tests get it from NewPair's t.Cleanup, which runs
// even when the test fails, calls t.FailNow or panics. Other callers (the
// demo) must defer Pair.Close or NS.Close right after creating them, and must
// turn SIGINT/SIGTERM into a normal return (signal.NotifyContext, then return
// from main's work function) so the deferred Close runs: Go's default action
// on SIGINT exits without running deferred calls, and a bind mount left at
// /run/netns keeps the namespace and its veth alive. The package keeps no
// global state and installs no signal handlers. RemoveLeftovers clears what
// a killed process left behind.
//
// The package is Linux only; this file carries no build constraint so that
// the package still exists, empty, on the other targets the project vets.
package testnet
