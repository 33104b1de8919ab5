# The two commands of the README: `make demo` and `make test`.
# Both create the virtualenv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test dev-certs schema bench-ingest bench-sim bench-vault bench-exec bench-venues bench-streams bench-failover bench-takeover clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/exbus demo $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS))

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

# development TLS certificates for NATS (CA, server/route, client) into deploy/nats/certs,
# where deploy/nats/cluster and the k8s Secrets commands expect them; FORCE=1 replaces them
CERTS_DIR ?= deploy/nats/certs
dev-certs: $(VENV)/.installed
	$(BIN)/exbus nats-certs --out $(CERTS_DIR) $(if $(FORCE),--force)

schema: $(VENV)/.installed
	$(BIN)/exbus schema export

# cryptofeed 2.4.1, the comparison of bench-ingest, in a virtualenv of its own (bench only)
CF_VENV ?= .venv-cryptofeed
$(CF_VENV)/bin/python:
	$(PYTHON) -m venv $(CF_VENV)
	$(CF_VENV)/bin/python -m pip install -q cryptofeed==2.4.1

bench-ingest: $(VENV)/.installed $(CF_VENV)/bin/python
	$(BIN)/python bench/ingest_replay.py --cryptofeed-python $(CF_VENV)/bin/python \
		$(if $(SOAK_SECONDS),--soak $(SOAK_SECONDS)) --out bench/results/ingest_replay.json

bench-sim: $(VENV)/.installed
	$(BIN)/python bench/simulator_orders.py

bench-vault: $(VENV)/.installed
	$(BIN)/python bench/vault_grants.py --out bench/results/vault.json

# ccxt (a test extra) provides the per-process throttler exbus's shared leases are compared with
bench-exec: $(VENV)/.installed-test
	$(BIN)/python bench/executor_throughput.py --out bench/results/executor.json

# per venue: command -> accepted overhead against the simulator speaking that venue
bench-venues: $(VENV)/.installed-test
	$(BIN)/python bench/venue_overhead.py --out bench/results/venue_overhead.json

bench-streams: $(VENV)/.installed-test
	$(BIN)/python bench/private_stream_latency.py --out bench/results/private_streams.json

bench-failover: $(VENV)/.installed-test
	$(BIN)/python bench/cluster_failover.py

# two ingestor processes sharing replayed feeds; the owner of one is killed, repeatedly
bench-takeover: $(VENV)/.installed-test
	$(BIN)/python bench/ingest_takeover.py --out bench/results/ingest_takeover.json
	$(BIN)/python bench/ingest_takeover.py --standby --out bench/results/ingest_takeover_standby.json

clean:
	rm -rf $(VENV) $(CF_VENV) .exbus .pytest_cache
