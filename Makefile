# telemeet: the everyday commands. `make help` lists them.
#
# Deploy: `make deploy-guided ENV=dev` the first time (asks for parameters and saves them in
# samconfig.toml), then `make deploy ENV=dev` (or ENV=prod). Then `make smoke API_URL=... TELEMEET_TOKEN=...`.

ENV ?= dev
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true
TOOLS = $(shell bash infra/tools-venv.sh)

.PHONY: help dev test check bench build deploy deploy-guided smoke

help:
	@echo "make dev             run locally (moto, sandboxes, gateway on 127.0.0.1:3000)"
	@echo "make test            every test (the README's test command)"
	@echo "make check           template checks: sam validate --lint, cfn-lint, sam build"
	@echo "make bench           benchmarks, Rust and the Node.js peer side by side (QUICK=1: CI budgets)"
	@echo "make build           sam build: arm64 release binaries with cargo-lambda (ENV=$(ENV))"
	@echo "make deploy-guided   first deploy of ENV=$(ENV): sam deploy --guided, saves answers"
	@echo "make deploy          build, then sam deploy --config-env $(ENV)"
	@echo "make smoke           post-deploy smoke test (needs API_URL and TELEMEET_TOKEN)"

dev:
	bash infra/dev.sh

test:
	bash infra/test.sh

check:
	bash infra/check-template.sh

bench:
	bash infra/bench.sh $(if $(QUICK),--quick,)

build:
	bash infra/warm-zig.sh
	$(SAM_ENV) PATH="$(TOOLS)/bin:$$PATH" sam build --config-env $(ENV)

deploy-guided: build
	$(SAM_ENV) PATH="$(TOOLS)/bin:$$PATH" sam deploy --guided --config-env $(ENV)

deploy: build
	$(SAM_ENV) PATH="$(TOOLS)/bin:$$PATH" sam deploy --config-env $(ENV)

smoke:
	bash infra/smoke.sh
