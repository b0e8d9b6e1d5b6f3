# Loop: see README.md. Every target provisions what it needs.
SHELL := /bin/bash
DOTNET ?= dotnet
RID ?= linux-x64
BIN := artifacts/bin
LOOP := $(BIN)/loop
PREFIX ?= /usr/local

.PHONY: build run test install docker-build lint bench bench-cluster chaos clean test-env

## build: the `loop` executable as a self-contained single file (also what agent containers mount for `loop mcp`)
build:
	$(DOTNET) publish src/Loop.Cli -c Release -r $(RID) -o $(BIN) --nologo -v quiet
	@echo "built $(LOOP)"

## run: build, then start the daemon on its defaults (~/.loop, http://127.0.0.1:8222)
run: build
	$(LOOP) serve

## test-env: a Docker engine, the debootstrap base image and the test agent image (idempotent)
test-env:
	bash scripts/provision-test-env.sh

## test: everything, against a real Docker engine
test: test-env build
	$(DOTNET) test Loop.sln -c Release --nologo

## install: put `loop` on the PATH
install: build
	install -m 0755 $(LOOP) $(PREFIX)/bin/loop

## docker-build: the production agent image from container/Dockerfile (needs a registry for its base)
docker-build:
	docker build -t loop-agent:latest container

## lint: compile with warnings as errors and check formatting
lint:
	$(DOTNET) build Loop.sln -c Release --nologo -warnaserror
	$(DOTNET) format Loop.sln --verify-no-changes

## bench: the benchmarks under bench/ (see bench/README.md)
bench: build test-env
	bash bench/run.sh

## bench-cluster: only the cluster benchmarks (j) of bench/README.md: nodes on a private PostgreSQL, no Docker needed
bench-cluster: build
	bash bench/run.sh cluster

## chaos: kill -9 of loop serve during traffic, then checks nothing was lost or answered twice (bench/README.md, (i))
chaos: build test-env
	bash bench/run.sh chaos

clean:
	rm -rf artifacts
	$(DOTNET) clean Loop.sln --nologo -v quiet
