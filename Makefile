# kubectl-gitlab-agent: build, test, lint and generate.
GO      ?= go
MODULE  := github.com/kubectl-gitlab-agent/kubectl-gitlab-agent
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(MODULE)/pkg/version.version=$(VERSION) \
           -X $(MODULE)/pkg/version.commit=$(COMMIT) -X $(MODULE)/pkg/version.date=$(DATE)
# go test's own timeout; the control plane is built before go test starts.
TEST_TIMEOUT ?= 40m

.PHONY: build test testbin lint generate bench clean krew-manifest

build: ## the plugin binary, in bin/
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/kubectl-gitlab_agent ./cmd/kubectl-gitlab_agent

testbin: ## build (once, cached outside the repo) the test control plane and the test Flux
	$(GO) run ./test/cluster/cmd/testbin

test: lint testbin ## every test, control plane included, all with -race: pkg/ and the fakes first, then the end-to-end tiers
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./pkg/... ./test/fakegitlab/... ./test/fakekas/...
	@# -count=1: these tests build and run the plugin from the source tree, which
	@# go test's result cache does not see (test/e2e imports nothing of pkg/).
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v -e '/pkg/' -e '/test/fakegitlab' -e '/test/fakekas')

lint: ## gofmt, go vet, and go.mod as go mod tidy leaves it
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

generate: ## docs/ and completions/ from the command tree
	$(GO) run ./cmd/kubectl-gitlab_agent __generate .

bench: build ## the performance figures of test/bench, beside kubectl's
	test/bench/startup.sh
	$(GO) run ./test/bench/diffbench
	$(GO) run ./test/bench/proxybench

clean:
	rm -rf bin

krew-manifest: ## plugins/gitlab-agent.yaml for TAG from goreleaser's dist/checksums.txt
	$(GO) run ./test/release/cmd/krewmanifest -tag $(TAG) -checksums dist/checksums.txt > plugins/gitlab-agent.yaml.tmp
	mv plugins/gitlab-agent.yaml.tmp plugins/gitlab-agent.yaml
