package broker

// Fencing and the routes (controller mode, package controller/agent): a
// fenced master must not lead clients to it as brokerId 0, or a master cut
// off from the controller quorum would keep a route next to the elected
// one. While fenced, a master skips REGISTER_BROKER and unregisters at
// once; when the fence is lifted it registers at once.

// routesFenced reports whether this broker must not advertise itself.
func (b *Broker) routesFenced() bool { return !b.isSlave() && b.ha.fenced.Load() }

// fenceRoutes applies a fence change to the routes (SetFenced). Before
// Start there is nothing to withdraw: registerLoop checks routesFenced.
func (b *Broker) fenceRoutes(on bool) {
	if b.isSlave() || b.namesrv == nil {
		return
	}
	if on {
		go b.sendUnregister()
	} else {
		go b.registerAll()
	}
}
