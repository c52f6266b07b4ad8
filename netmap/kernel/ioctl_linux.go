package kernel

// nioc are the ioctl numbers of the build OS.
var nioc = LinuxIoctls()

// kloopEventfds says whether SYNC_KLOOP_START accepts the EVENTFDS option:
// Linux builds netmap with SYNC_KLOOP_POLL.
const kloopEventfds = true
