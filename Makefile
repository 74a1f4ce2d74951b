# Build entry points. `make test-stemcell` rebuilds the test stemcell only
# when the build script, the test agent or its rules, or the kernel change.
# `make agent-stemcell` (the real bosh-agent) rebuilds only when its script,
# the pinned agent version or the monit proxy change; its debootstrap rootfs
# is cached outside the clone (see scripts/build-agent-stemcell.sh).

TEST_STEMCELL := build/test-stemcell.tgz
TEST_AGENT_SOURCES := $(shell find cmd/test-agent internal/guestcheck -name '*.go' ! -name '*_test.go' 2>/dev/null)

AGENT_STEMCELL := build/agent-stemcell.tgz
AGENT_STEMCELL_INPUTS := scripts/build-agent-stemcell.sh scripts/stemcell-lib.sh tools/bosh-agent/go.mod tools/bosh-agent/go.sum \
	$(wildcard tools/bosh-agent/wf-stub/*) $(shell find cmd/monit-csrf-proxy -name '*.go' ! -name '*_test.go' 2>/dev/null)

.PHONY: test-stemcell agent-stemcell clean

test-stemcell: $(TEST_STEMCELL)

agent-stemcell: $(AGENT_STEMCELL)

$(AGENT_STEMCELL): $(AGENT_STEMCELL_INPUTS)
	scripts/build-agent-stemcell.sh $@

$(TEST_STEMCELL): scripts/build-test-stemcell.sh scripts/stemcell-lib.sh $(TEST_AGENT_SOURCES) $(wildcard /boot/vmlinuz-*)
	scripts/build-test-stemcell.sh $@

clean:
	rm -rf build/test-stemcell build/test-stemcell.tgz build/agent-stemcell build/agent-stemcell.tgz
