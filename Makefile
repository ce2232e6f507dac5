# berth — see README.md
CARGO ?= cargo
TESTINIT_TARGET := x86_64-unknown-linux-gnu
# The release binary is static and not position-independent: no dynamic loader and no
# relocations to process at each of the two execs a `run` costs (exeseal re-executes once).
# It links musl when the Rust target can be installed: glibc's start-up probes the CPU's
# caches with CPUID, which traps in a VM (about 0.25 ms of CPU per exec here); otherwise
# glibc's libc.a. `--target` keeps these flags off build scripts and proc-macros. The
# binary is copied to one path whatever the libc.
MUSL_TARGET := x86_64-unknown-linux-musl
GNU_TARGET := x86_64-unknown-linux-gnu
RELEASE_RUSTFLAGS := -C target-feature=+crt-static -C relocation-model=static
BERTH_RELEASE := $(CURDIR)/target/berth
# The runc face: the same binary under a name ending in -runc (a symlink beside it).
BERTH_RUNC_RELEASE := $(CURDIR)/target/berth-runc
export BERTH_RELEASE
PREFIX ?= /usr/local
SYSTEMD_GENERATORS ?= /usr/lib/systemd
# ring (rustls' crypto, for registries over TLS) compiles a little freestanding C and asm.
# cc-rs looks for a cross compiler named x86_64-linux-musl-gcc; musl-gcc (musl-tools) or
# the host's cc serve as well: the C uses no libc headers beyond stdint/string.
CC_x86_64_unknown_linux_musl ?= $(shell command -v x86_64-linux-musl-gcc || command -v musl-gcc || echo cc)
export CC_x86_64_unknown_linux_musl

.PHONY: all build release install demo deps test test-release test-clients test-control unit lint fmt clean bench bench-net bench-rootless-net fuzz

all: build

deps:
	@command -v busybox >/dev/null 2>&1 && busybox --list >/dev/null 2>&1 && [ -x /bin/busybox ] || { \
	  echo "installing busybox-static"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static; }

build:
	$(CARGO) build
	ln -sfn berth target/debug/berth-runc

release:
	@if rustup target list --installed 2>/dev/null | grep -qx $(MUSL_TARGET) || \
	    rustup target add $(MUSL_TARGET) >/dev/null 2>&1; then t=$(MUSL_TARGET); else \
	  t=$(GNU_TARGET); ls /usr/lib/*/libc.a >/dev/null 2>&1 || { \
	    echo "installing libc6-dev (libc.a, for the static binary)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libc6-dev; }; fi; \
	echo "release: static berth for $$t"; \
	BERTH_COMMIT=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" $(CARGO) build --release -p berth --target $$t && \
	cp target/$$t/release/berth $(BERTH_RELEASE).tmp && mv $(BERTH_RELEASE).tmp $(BERTH_RELEASE) && \
	ln -sfn berth $(BERTH_RUNC_RELEASE)

# berth and its runc face (berth-runc, a symlink) into $(PREFIX)/bin.
install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BERTH_RELEASE) $(DESTDIR)$(PREFIX)/bin/berth
	ln -sfn berth $(DESTDIR)$(PREFIX)/bin/berth-runc
# Quadlet's .container files: berth as a systemd generator (system and user managers).
	install -d $(DESTDIR)$(SYSTEMD_GENERATORS)/system-generators $(DESTDIR)$(SYSTEMD_GENERATORS)/user-generators
	ln -sfn $(PREFIX)/bin/berth $(DESTDIR)$(SYSTEMD_GENERATORS)/system-generators/berth-generator
	ln -sfn $(PREFIX)/bin/berth $(DESTDIR)$(SYSTEMD_GENERATORS)/user-generators/berth-generator
# berth-restart.service: --restart always|unless-stopped containers come back at boot.
	install -d $(DESTDIR)$(SYSTEMD_GENERATORS)/system $(DESTDIR)$(SYSTEMD_GENERATORS)/user
	for d in system user; do \
	  sed 's|@BERTH@|$(PREFIX)/bin/berth|g' contrib/systemd/berth-restart.service > $(DESTDIR)$(SYSTEMD_GENERATORS)/$$d/berth-restart.service && \
	  chmod 0644 $(DESTDIR)$(SYSTEMD_GENERATORS)/$$d/berth-restart.service || exit 1; done

# The integration tests against the release binary (what users run), in a network
# namespace of their own as `test`'s. The crash test needs the checkpoints only debug
# builds have.
test-release: deps release
	BERTH_TEST_RUNTIME=$(BERTH_RUNC_RELEASE) $(CARGO) test --workspace --tests --no-run
	BERTH_TEST_RUNTIME=$(BERTH_RUNC_RELEASE) ./tools/in-netns.sh $(CARGO) test --offline \
	  --workspace --tests -- --test-threads=4 --skip kill_9_at_every_stage_of_create

# Builds berth and runs a container with it, offline.
demo: deps release
	BERTH=$(BERTH_RELEASE) ./tools/demo.sh

# Every test: unit tests, then the integration tests against the built binary. They run
# in a network namespace of their own (tools/in-netns.sh): a rootful container without
# --network is on the default bridge, whose bridge, nftables table and ip_forward stay
# there. Built first, outside: cargo needs no network inside.
test: deps
	$(CARGO) test --workspace --no-run
	./tools/in-netns.sh $(CARGO) test --offline --workspace -- --test-threads=4

# podman (with conmon) and containerd (ctr + shim) driving berth; installs them from Debian.
# CLIENT_RUNTIME=/usr/sbin/runc runs the same scenarios against runc as a control.
test-clients: deps build
	./tests/clients/run.sh

# The runc face's conformance tests with runc itself as the control (runc comes with the
# clients test-clients installs): a test that fails there asserts something runc does not do.
test-control: deps build
	BERTH_TEST_RUNTIME=$${CONTROL_RUNTIME:-/usr/sbin/runc} $(CARGO) test --test compat -- --test-threads=4

# berth, crun and runc side by side (never part of the tests); rewrites BENCHMARKS.md.
bench: release
	BERTH=$(BERTH_RUNC_RELEASE) ./tools/bench/bench.sh

# What a bridge network costs (a run, a published port's throughput), in a private
# network namespace; prints the figures.
bench-net: release
	./tools/bench/network.sh $(BERTH_RELEASE)

# Throughput through a rootless published port (pasta) against loopback and podman
# rootless, as a user made for the run, in private network and mount namespaces.
bench-rootless-net: release
	./tools/bench/rootless_net.sh $(BERTH_RELEASE)

# cargo fuzz over the config loader, seccomp compiler, sync-socket decoder and path
# resolver, FUZZ_SECONDS (default 60) each; installs cargo-fuzz if missing.
fuzz:
	./tools/fuzz.sh

unit:
	$(CARGO) test --lib

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
