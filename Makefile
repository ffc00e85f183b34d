# The two set-up commands are `make run` and `make test`; both create .venv when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
GATEWAY_PORT ?= 8000
MOCK_PORT ?= 9100
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/14
SOAK_REDIS_URL ?= redis://127.0.0.1:6379/13
# `make bench` runs the gateway beside LiteLLM's proxy too (5 to 8 more minutes; the first run
# installs LiteLLM into var/bench/litellm-venv, about a minute): COMPARE=none leaves it out.
COMPARE ?= litellm

.PHONY: run test fuzz drills bench soak lint format install services clean

$(BIN)/.installed: pyproject.toml
	@mkdir -p var
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $(PYTHON)…"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing into $(VENV), one line per package (a first install takes a few minutes; log: var/install.log)…"
	@scripts/install.sh $(BIN)
	@touch $@

install: $(BIN)/.installed

# The demo's mock provider listens on 127.0.0.1: loopback egress is allowed for it explicitly.
run: export GATEWAY_EGRESS_ALLOW_LOOPBACK ?= true
run: install
	@mkdir -p var
	@echo "Preparing the database and the demo (gateway on port $(GATEWAY_PORT), mock provider on $(MOCK_PORT))…"
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo --url http://127.0.0.1:$(GATEWAY_PORT) --mock-url http://127.0.0.1:$(MOCK_PORT)/v1
	@GATEWAY_PORT=$(GATEWAY_PORT) MOCK_PORT=$(MOCK_PORT) scripts/run_demo.sh

services:
	@scripts/ensure_services.sh

test: install services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

# The schema fuzz with fresh random cases each run (`make test` replays a fixed set).
fuzz: install services
	GATEWAY_FUZZ_RANDOM=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest tests/security/test_schema_fuzz.py $(PYTEST_ARGS)

# Every drill of tests/drills, then one table: drill, expectation, observed, pass/fail.
drills: install services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python scripts/drills.py $(PYTEST_ARGS)

bench: install services
	@scripts/ensure_bench_tools.sh
	REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python -m bench $(if $(BASELINE),--baseline $(BASELINE)) --compare $(COMPARE) $(BENCH_ARGS)

# Not part of `make test`: ten minutes at 70% of the measured maximum rate (SOAK_ARGS="--minutes 3").
soak: install services
	REDIS_URL=$(SOAK_REDIS_URL) $(BIN)/python scripts/soak.py $(SOAK_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
