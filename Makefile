# Build entry points. `make test-stemcell` rebuilds the test stemcell only
# when the build script, the test agent or its rules, or the kernel change.

TEST_STEMCELL := build/test-stemcell.tgz
TEST_AGENT_SOURCES := $(shell find cmd/test-agent internal/guestcheck -name '*.go' ! -name '*_test.go' 2>/dev/null)

.PHONY: test-stemcell clean

test-stemcell: $(TEST_STEMCELL)

$(TEST_STEMCELL): scripts/build-test-stemcell.sh $(TEST_AGENT_SOURCES) $(wildcard /boot/vmlinuz-*)
	scripts/build-test-stemcell.sh $@

clean:
	rm -rf build/test-stemcell build/test-stemcell.tgz
