# The two commands that matter on a fresh machine:  make run  and  make test.
PY := .venv/bin/python
CORES ?= 2
CONFIG ?= config.yaml

.PHONY: setup run bases docs test test-long test-slurm test-faults test-configs test-fsdp lint dry clean bench bench-frontier

.venv/.done: pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: it is a CPU build on local disk; anything looser pulls gigabytes of CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: .venv/.done

# No venv needs activating: rules/common.smk puts .venv/bin (the Python running Snakemake) on the jobs' PATH.
run: setup
	HF_HUB_OFFLINE=1 .venv/bin/snakemake --cores $(CORES) --configfile $(CONFIG) --profile profiles/default

# The embedded family's pretrained bases, shipped in resources/bases/tiny/ (config.yaml loads them as
# checkpoints). Rebuilds them from the embedded corpus; on CPU the weights come out byte-identical, so
# `git status resources/bases` shows only the model card's commit line changing. About 20 min on 2 cores.
# The old default's bases: make bases BASES_CONFIG=configs/regime/bases-r6.yaml BASES_OUT=resources/bases/tiny-r6
BASES_CONFIG ?= configs/bases.yaml
BASES_OUT ?= resources/bases/tiny
BASES_RESULTS = $(shell sed -n 's/^results: *//p' $(BASES_CONFIG))
bases: setup
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/snakemake --cores $(CORES) --set-threads pretrain=1 --configfile $(BASES_CONFIG) \
		--profile profiles/default $$(for s in large small; do .venv/bin/kdmem path scratch_base family=tiny size=$$s --results $(BASES_RESULTS); done)
	.venv/bin/kdmem export-bases --config $(BASES_CONFIG) --family tiny --results $(BASES_RESULTS) --out $(BASES_OUT)

# The config reference, generated from the schema (tests/test_config.py fails when they disagree).
docs: setup
	.venv/bin/kdmem config-doc --out docs/config.md

dry: setup
	.venv/bin/snakemake -n --cores $(CORES) --configfile $(CONFIG)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# The long suites: whole-pipeline runs, each minutes long (CI runs them after `make test`).
test-slurm: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m slurm

test-faults: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m faults

test-configs: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m configs

test-fsdp: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m fsdp

# One pytest session, so the SLURM and fault tests share one reference run.
test-long: setup
	HF_HUB_OFFLINE=1 timeout -s KILL 3600 $(PY) -m pytest -q -m 'slurm or faults or configs or fsdp'

lint: setup
	$(PY) -m ruff check .
	.venv/bin/snakemake --lint --cores 1

bench: setup
	cd benchmarks && ../$(PY) run_all.py

# The sampled cache's bytes against the student's val loss (about 25 min; needs `make run`'s outputs)
bench-frontier: setup
	cd benchmarks && ../$(PY) bench_cache_frontier.py

clean:
	rm -rf results .snakemake
