# Build entry points. `make test-stemcell` rebuilds the test stemcell only
# when the build script, the test agent or its rules, or the kernel change;
# `make vsphere-test-stemcell` its vSphere-format twin when it or its script do.
# `make agent-stemcell` (the real bosh-agent) rebuilds only when its script,
# the pinned agent version or the monit proxy change; its debootstrap rootfs
# is cached outside the clone (see scripts/build-agent-stemcell.sh).
# `make agent-warden-stemcell` is its warden form (Docker), from the same cache.

TEST_STEMCELL := build/test-stemcell.tgz
TEST_AGENT_SOURCES := $(shell find cmd/test-agent internal/guestcheck -name '*.go' ! -name '*_test.go' 2>/dev/null)

# The vSphere-format twin (OVF + streamOptimized VMDK, UEFI boot) is made
# from the test stemcell's kernel and initramfs.
VSPHERE_TEST_STEMCELL := build/vsphere-test-stemcell.tgz

AGENT_STEMCELL := build/agent-stemcell.tgz
# The same root filesystem as a warden stemcell, for Docker (the debootstrap
# tarball is cached and shared: only the agent's setup is redone).
AGENT_WARDEN_STEMCELL := build/agent-stemcell-warden.tgz
AGENT_STEMCELL_INPUTS := scripts/build-agent-stemcell.sh scripts/stemcell-lib.sh tools/bosh-agent/go.mod tools/bosh-agent/go.sum \
	$(wildcard tools/bosh-agent/wf-stub/*) $(shell find cmd/monit-csrf-proxy -name '*.go' ! -name '*_test.go' 2>/dev/null)

.PHONY: test-stemcell vsphere-test-stemcell agent-stemcell agent-warden-stemcell clean

test-stemcell: $(TEST_STEMCELL)

vsphere-test-stemcell: $(VSPHERE_TEST_STEMCELL)

agent-stemcell: $(AGENT_STEMCELL)

agent-warden-stemcell: $(AGENT_WARDEN_STEMCELL)

$(AGENT_STEMCELL): $(AGENT_STEMCELL_INPUTS)
	scripts/build-agent-stemcell.sh $@

$(AGENT_WARDEN_STEMCELL): $(AGENT_STEMCELL_INPUTS)
	scripts/build-agent-stemcell.sh --warden $@

$(TEST_STEMCELL): scripts/build-test-stemcell.sh scripts/stemcell-lib.sh $(TEST_AGENT_SOURCES) $(wildcard /boot/vmlinuz-*)
	scripts/build-test-stemcell.sh $@

$(VSPHERE_TEST_STEMCELL): scripts/build-vsphere-test-stemcell.sh scripts/stemcell-lib.sh $(TEST_STEMCELL)
	scripts/build-vsphere-test-stemcell.sh $@ $(TEST_STEMCELL)

clean:
	rm -rf build/test-stemcell build/test-stemcell.tgz build/vsphere-test-stemcell build/vsphere-test-stemcell.tgz build/agent-stemcell build/agent-stemcell.tgz build/agent-stemcell-warden build/agent-stemcell-warden.tgz
