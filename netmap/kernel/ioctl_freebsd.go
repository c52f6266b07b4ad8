package kernel

// nioc are the ioctl numbers of the build OS.
var nioc = FreeBSDIoctls()

// kloopEventfds says whether SYNC_KLOOP_START accepts the EVENTFDS option.
// FreeBSD's netmap has no SYNC_KLOOP_POLL: the option comes back with
// status EOPNOTSUPP and the ioctl returns 0 at once without running the
// loop (research §6.6).
const kloopEventfds = false
