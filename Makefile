# pose3d: `make help` lists the targets. Every target installs what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

#> PYTHON_SYS=python3.11 | the Python 3.11 that make setup creates .venv with (its name or path where it is called otherwise)
PYTHON_SYS ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the installer make setup puts into .venv (by pip) to install the pinned packages with (a new version here takes
# effect at the next setup, when pyproject.toml changes or .venv is removed)
UV_VERSION := 0.13.8
KERNEL := pose3d

#> PROFILE=cpu | smoke (seconds), cpu (a 2-core laptop) or paper: reproduce, data, and the default of sweep, ablation, unseen-check
PROFILE ?= cpu
comma := ,
#> REAL_DATA=False | True: reproduce (and sweep) on the converted real downloads (data.raw_*_dir of the profile's config) into runs/PROFILE-real
REAL_DATA ?= False
# A run on the real datasets keeps its own folder, beside the profile's synthetic run
# (pose3dlib.engine.runs.run_name spells the same names for the sweep).
REAL_SUFFIX := $(if $(filter True,$(REAL_DATA)),-real)
#> RUN_DIR=runs/PROFILE | reproduce's run folder (runs/PROFILE-real with REAL_DATA=True); a folder of your own keeps its run beside the profile's
RUN_DIR := runs/$(PROFILE)$(REAL_SUFFIX)
# Only the default profile writes the committed figures/; other profiles keep theirs in the run folder.
FIG_DIR := $(if $(filter runs/cpu,$(RUN_DIR)),figures,$(RUN_DIR)/figures)
# RUN_DIR names make's file targets: a space, % or : in it would split or garble them (make ran
# unrelated rules with runs/my run), and a trailing / would send the figures of runs/cpu/ elsewhere and
# skip its README table. Another built-in profile's own folder (runs/cpu with PROFILE=smoke) would
# replace that run's committed notebooks, figures and table.
ifneq ($(filter reproduce,$(MAKECMDGOALS)),)
ifneq ($(words $(RUN_DIR)),1)
$(error RUN_DIR='$(RUN_DIR)': make cannot use a run folder whose name holds a space (its steps are file targets); choose one without, e.g. runs/my-run)
endif
ifneq ($(findstring %,$(RUN_DIR))$(findstring :,$(RUN_DIR)),)
$(error RUN_DIR=$(RUN_DIR): make cannot use a run folder whose name holds % or : (its steps are file targets); choose one without)
endif
ifneq ($(patsubst %/,,$(RUN_DIR)),$(RUN_DIR))
$(error RUN_DIR=$(RUN_DIR): drop the trailing /, e.g. RUN_DIR=$(patsubst %/,%,$(RUN_DIR)))
endif
run_dir_profile := $(patsubst %-real,%,$(patsubst runs/%,%,$(filter runs/%,$(RUN_DIR))))
ifneq ($(and $(run_dir_profile),$(wildcard configs/$(run_dir_profile).yaml),$(filter-out runs/$(PROFILE)$(REAL_SUFFIX),$(RUN_DIR))),)
$(error RUN_DIR=$(RUN_DIR) is the $(run_dir_profile) profile's own run folder, but PROFILE=$(PROFILE) REAL_DATA=$(REAL_DATA) runs into runs/$(PROFILE)$(REAL_SUFFIX): it would replace that run's notebooks, figures and metrics.csv; use RUN_DIR=runs/$(PROFILE)$(REAL_SUFFIX) (the default) or a folder of your own)
endif
endif
# When this make started: `make reproduce` reports its own minutes, setup included.
MAKE_START := $(shell date +%s)
NOTEBOOKS := 01_data_prep 02_train_2d 03_train_depth 04_train_geometry 05_demo 06_eval_mpjpe

.PHONY: help setup browser test lint test-unit test-notebooks reproduce data lab sweep ablation unseen-check bench gpu-check clean

help: ## list the targets and the variables they take
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'
	@echo "Variables (make TARGET NAME=value):"
	@grep -E '^#> ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = " [|] "}; {printf "  %-18s %s\n", substr($$1, 4), $$2}'

setup: $(STAMP) ## create .venv and install pose3dlib (editable) with its pinned packages; idempotent

# also when .venv's python is gone or broken (the system Python it linked to removed), whatever the stamp says,
# and when the clone was moved or copied: the stamp holds the folder .venv was made in, whose code (and Jupyter
# kernel) a .venv made elsewhere would still run, so there it is made again
$(STAMP): pyproject.toml $(shell test -x $(PY) && $(PY) -c '' 2>/dev/null || echo FORCE) $(shell test "$$(cat $(STAMP) 2>/dev/null)" = "$(CURDIR)" || echo FORCE)
	@command -v $(PYTHON_SYS) >/dev/null || { echo "error: $(PYTHON_SYS) not found (pose3d needs Python 3.11)"; exit 2; }
	@made_in="$$(cat $(STAMP) 2>/dev/null)"; if [ -n "$$made_in" ] && [ "$$made_in" != "$(CURDIR)" ]; then \
	  echo "setup: .venv was made in $$made_in (a moved or copied clone); making it again here"; \
	  $(PYTHON_SYS) -m venv --clear $(VENV); fi
	@# a .venv without a working pip (venv stopped at ensurepip, e.g. before python3.11-venv was installed) is made again
	$(PY) -c 'import pip' 2>/dev/null || $(PYTHON_SYS) -m venv --clear $(VENV)
	@# uv (pinned, installed into .venv by its pip) installs the packages: it downloads and unpacks them in
	@# parallel, 7 s against pip's 40 here (docs/benchmarks.md), and writes no .pyc files (compileall below does).
	@# It reads no pip settings, so pip's find-links (a folder of local wheels, e.g. a CPU build of torch) are passed on.
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	set -f; FIND_LINKS="$$($(PY) pose3dlib/tools/pip_find_links.py)" && $(PY) -m uv pip install --quiet --python $(PY) $$FIND_LINKS -e '.[dev]'
	@# uv leaves the packages uncompiled; compileall writes their .pyc files on every core (pip's own compile used one, docs/benchmarks.md),
	@# all but the packages' own test suites (a fifth of the files), which nothing here imports.
	@# Like pip, it passes over files that only a newer Python parses (torch ships some for 3.12).
	$(PY) -c 'import compileall, re, sysconfig; compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2, workers=0, rx=re.compile(r"/(tests?|testing/_internal)/"))'
	@# the notebooks' Jupyter kernel, started through pose3dlib.tools.kernel (the memory allocator: pose3dlib/engine/allocator.py)
	$(PY) -c 'from pose3dlib.tools.kernel import register; register("$(KERNEL)")' >/dev/null
	@printf '%s\n' "$(CURDIR)" > $(STAMP)
	@echo "setup: .venv ready (kernel '$(KERNEL)' registered)"

.PHONY: FORCE
FORCE:

test: setup browser lint test-unit test-notebooks ## lint, then run the unit tests and the notebook tests (smoke scale)

lint: setup ## ruff check (rules in pyproject.toml); must be clean
	$(PY) -m ruff check .

browser: ## install Debian's headless Chromium for the real-browser test, when missing (outside CI a failed install only warns: the test then skips)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing chromium (Debian package) for the browser test"; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; } \
	  || { [ -z "$${CI:-}" ] && echo "warning: chromium could not be installed (no apt-get or sudo?); the browser test will be skipped"; }; }

test-unit: setup ## unit tests only
	$(PY) -m pytest tests -q

test-notebooks: setup ## run all notebooks at smoke scale with nbval, comparing the checked cells
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  POSE3D_PROGRESS=off $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks -q \
	    --ignore-glob='notebooks/.*'; \
	else echo "test-notebooks: no notebooks yet"; fi

reproduce: setup ## run notebooks 01..06 through papermill into runs/PROFILE/ (PROFILE=cpu by default); skips up-to-date steps
reproduce: $(RUN_DIR)/.stamps/06_eval_mpjpe
ifeq ($(RUN_DIR),runs/cpu)
	$(PY) -m pose3dlib report --metrics $(RUN_DIR)/metrics.csv --readme README.md --config configs/$(PROFILE).yaml
endif
	@echo "reproduce: done in $$(awk -v s=$(MAKE_START) -v e=$$(date +%s) 'BEGIN {printf "%.1f", (e - s) / 60}') minutes (this make, setup included; load average now $$(uptime | sed 's/.*load average[s]*: //'))"
	@# The 2-core hosts' speed varies from day to day: say how fast this one is (about 10 s).
	@set -o pipefail; $(PY) -m pose3dlib bench --host-speed | sed 's/^/reproduce: /' \
	  || echo "reproduce: host speed not measured (bench --host-speed failed; the run itself is complete)"
	@echo "reproduce: executed notebooks in $(RUN_DIR)/, metrics in $(RUN_DIR)/metrics.csv, figures in $(FIG_DIR)/"
ifeq ($(PROFILE),smoke)
	@echo "reproduce: the smoke profile trains for seconds on a few dozen pictures: its numbers only show that the code runs (the results: make reproduce, PROFILE=cpu)"
endif

# Each step is a make target: a stamp in $(RUN_DIR)/.stamps/ (git-ignored, so a fresh clone
# runs every step even though the executed notebooks in runs/cpu/ are committed). A step is
# re-run only when its source notebook, the profile's config, the library, the step
# before it or (below) the checkpoint of the stage before it changed; inside, finished data and checkpoints of the same config are reused (a stage's
# checkpoint ignores eval.*, later stages' settings and the number of synthetic lab test people:
# runs.training_differences).
# `python -m pose3dlib run-notebook` rejects unknown parameters and writes the executed
# notebook atomically, so a failed or interrupted step re-runs.
LIB_SOURCES := $(shell find pose3dlib -name '*.py' 2>/dev/null)
$(RUN_DIR)/.stamps/01_data_prep: notebooks/01_data_prep.ipynb
$(RUN_DIR)/.stamps/02_train_2d: notebooks/02_train_2d.ipynb $(RUN_DIR)/.stamps/01_data_prep
$(RUN_DIR)/.stamps/03_train_depth: notebooks/03_train_depth.ipynb $(RUN_DIR)/.stamps/02_train_2d
$(RUN_DIR)/.stamps/04_train_geometry: notebooks/04_train_geometry.ipynb $(RUN_DIR)/.stamps/03_train_depth
$(RUN_DIR)/.stamps/05_demo: notebooks/05_demo.ipynb $(RUN_DIR)/.stamps/04_train_geometry
$(RUN_DIR)/.stamps/06_eval_mpjpe: notebooks/06_eval_mpjpe.ipynb $(RUN_DIR)/.stamps/05_demo
# The built-in profiles' synthetic set written again since notebook 01 ran (`prepare-synthetic` with
# another seed or sizes): notebook 01 runs again (it writes the config's set) and the steps after it,
# whose stages are then trained again where the data they were trained on changed (runs.data_changes).
SYNTHETIC_MANIFEST ?= data/synthetic/$(PROFILE)/manifest.json
$(RUN_DIR)/.stamps/01_data_prep: $(wildcard $(SYNTHETIC_MANIFEST))
# A stage checkpoint newer than the step after it (the stage retrained by hand with `python -m
# pose3dlib train`) re-runs that step and the ones after it. (Absent checkpoints add nothing.)
$(RUN_DIR)/.stamps/03_train_depth: $(wildcard $(RUN_DIR)/stage1/last.pt)
$(RUN_DIR)/.stamps/04_train_geometry: $(wildcard $(RUN_DIR)/stage2/last.pt)
$(RUN_DIR)/.stamps/05_demo: $(wildcard $(RUN_DIR)/stage3/last.pt)
# A stage whose checkpoint is gone (its folder deleted by hand) is trained again, stamp or not, and the
# steps after it follow. (A fresh clone has no stamps: nothing changes there.)
$(RUN_DIR)/.stamps/02_train_2d: $(if $(wildcard $(RUN_DIR)/stage1/last.pt),,FORCE)
$(RUN_DIR)/.stamps/03_train_depth: $(if $(wildcard $(RUN_DIR)/stage2/last.pt),,FORCE)
$(RUN_DIR)/.stamps/04_train_geometry: $(if $(wildcard $(RUN_DIR)/stage3/last.pt),,FORCE)
$(RUN_DIR)/.stamps/%: configs/$(PROFILE).yaml $(LIB_SOURCES) | $(STAMP)
	@echo "== $* (PROFILE=$(PROFILE))"
	@# The old stamp goes first: a step forced by a deleted checkpoint and then interrupted must run again,
	@# not pass for done (its stage's last.pt, now unfinished, would look newer than the steps after it).
	@rm -f $@
	@OVERRIDES='[]'; if [ "$(REAL_DATA)" = True ]; then \
	  OVERRIDES=$$($(PY) -m pose3dlib real-data-overrides --config configs/$(PROFILE).yaml) || exit 2; fi; \
	set -x; $(PY) -m pose3dlib run-notebook $* $(RUN_DIR)/$*.ipynb -p config_file configs/$(PROFILE).yaml \
	  -p overrides "$$OVERRIDES" -p run_dir $(RUN_DIR) -p figures_dir $(FIG_DIR) $(PAPERMILL_ARGS_$*)
	@mkdir -p $(@D) && touch $@

# REAL_DATA=True: notebook 01, which converts the downloads, runs again when one changed since (a subject
# added, a file replaced; `real-data-overrides --state-file` rewrites this stamp only then, and make
# re-reads its time after the recipe), and so do the steps after it: a stage trained on the earlier
# conversion is trained again (runs.data_changes). `make -n` cannot know and lists them all; the
# first real-data make of a run without this stamp reruns its notebooks once (retraining nothing).
ifeq ($(REAL_DATA),True)
$(RUN_DIR)/.stamps/01_data_prep: $(RUN_DIR)/.stamps/downloads
endif
$(RUN_DIR)/.stamps/downloads: FORCE | $(STAMP)
	@mkdir -p $(@D) && $(PY) -m pose3dlib real-data-overrides --config configs/$(PROFILE).yaml --state-file $@ >/dev/null

# Notebook-specific parameters (data locations come from the config alone). REAL_DATA=True:
# every notebook gets the overrides of `pose3dlib real-data-overrides` (the converted sets of
# the downloads named by data.raw_*_dir in configs/$(PROFILE).yaml), and notebook 01 converts
# those downloads (once) and generates synthetic sets only for the datasets without one.
PAPERMILL_ARGS_01_data_prep = -p use_real_data $(REAL_DATA)

# Checked when make reads the Makefile, before set-up work: a mistyped profile or REAL_DATA value
# would otherwise find no rule for the stamps and report an empty run as done.
# $(call check_profile,VARIABLE): stop unless configs/<its value>.yaml exists and its `profile:` key
# is that name. make names a run's folders after the file (runs/<name>), the commands after the key
# (a sweep's runs/sweep/<key>/, unseen-check's data/synthetic/unseen/<key>/, the converted downloads'
# data/converted/<key>/), so a copied config still saying `profile: smoke` would write into smoke's.
profile_key = $(shell sed -n 's/^["'"'"']\{0,1\}profile["'"'"']\{0,1\}[[:space:]]*:[[:space:]]*["'"'"']\{0,1\}\([^"'"'"'#[:space:]]*\).*/\1/p' configs/$(1).yaml | head -n 1)
# $(call profile_matches,VARIABLE,KEY): stop unless KEY, the config's `profile:` as read above, is the variable's value.
profile_matches = $(if $(2),$(if $(filter-out $($(1)),$(2)),$(error $(1)=$($(1)): configs/$($(1)).yaml says profile: $(2); make names the run folders after the file and the commands after that key, so set `profile: $($(1))` in it)),$(error $(1)=$($(1)): configs/$($(1)).yaml has no line `profile: NAME` that make reads (a config without the key is the paper profile); make names the run folders after the file and the commands after that key, so add `profile: $($(1))` on a line of its own))
check_profile = $(if $(wildcard configs/$($(1)).yaml),,$(error $(1)=$($(1)): configs/$($(1)).yaml not found; the profiles are $(basename $(notdir $(wildcard configs/*.yaml)))))$(call profile_matches,$(1),$(call profile_key,$($(1))))
ifneq ($(filter reproduce data,$(MAKECMDGOALS)),)
$(call check_profile,PROFILE)
endif
ifneq ($(filter reproduce data sweep,$(MAKECMDGOALS)),)
ifeq ($(filter True False,$(REAL_DATA)),)
$(error REAL_DATA=$(REAL_DATA): expected True or False)
endif
endif
# The ablation and the unseen-data check build on the synthetic run runs/PROFILE: a
# REAL_DATA=True there would be ignored without a word.
ifneq ($(filter ablation unseen-check,$(MAKECMDGOALS)),)
ifneq ($(REAL_DATA),False)
$(error REAL_DATA=$(REAL_DATA): make ablation and make unseen-check run on the synthetic data of runs/PROFILE; REAL_DATA applies to make reproduce and make sweep)
endif
endif

data: setup ## write the synthetic data of configs/PROFILE.yaml where its data.*_dir name (data/synthetic/PROFILE for the built-in profiles; skipped when up to date)
	$(PY) -m pose3dlib prepare-synthetic --config configs/$(PROFILE).yaml

#> SWEEP_PROFILE | the sweep's profile (default PROFILE); SWEEP_PARAM: the dotted config key swept (default train.stage3.geometric_weight)
#> SWEEP_VALUES | comma-separated values; SWEEP_SEEDS=0,1,2 (empty: the config's seed); SWEEP_NOTEBOOKS="04_train_geometry 06_eval_mpjpe"
SWEEP_PROFILE ?= $(PROFILE)
SWEEP_PARAM ?= train.stage3.geometric_weight
# Default geometric-loss weights per profile, from 0 up past each profile's own value: the paper
# and the cpu profile use 0.01 with depth weight 0.1, smoke uses 0.01. Give SWEEP_VALUES when
# sweeping another SWEEP_PARAM (a dotted config key): there is no default for it, and none is an error.
SWEEP_VALUES_cpu = 0,0.01,0.1,1
SWEEP_VALUES_paper = 0,0.001,0.01,0.1
SWEEP_VALUES_smoke = 0,0.01
SWEEP_VALUES ?= $(if $(filter train.stage3.geometric_weight,$(SWEEP_PARAM)),$(SWEEP_VALUES_$(SWEEP_PROFILE)))
# Checked when make reads the Makefile, before set-up work, so the message comes at once.
ifneq ($(filter sweep,$(MAKECMDGOALS)),)
$(call check_profile,SWEEP_PROFILE)
ifeq ($(strip $(SWEEP_VALUES)),)
$(error SWEEP_VALUES is empty: give the values of $(SWEEP_PARAM), comma-separated, $(if $(filter train.stage3.geometric_weight,$(SWEEP_PARAM)),e.g. SWEEP_VALUES=0$(comma)0.01 (0: no geometric loss; 0.01: the paper's weight; only the built-in profiles have default values),e.g. SWEEP_VALUES=1e-4$(comma)3e-4))
endif
# a misspelt notebook stops here, before the base run's step below (which it would otherwise pick wrongly) runs
$(foreach nb,$(SWEEP_NOTEBOOKS),$(if $(wildcard $(if $(filter %.ipynb,$(nb)),$(nb),notebooks/$(nb).ipynb)),,$(error SWEEP_NOTEBOOKS: notebook not found: $(nb) (the project's: $(basename $(notdir $(wildcard notebooks/[0-9][0-9]_*.ipynb)))))))
endif
# Config seeds: every value runs once per seed, so the table shows mean +- sd over them.
# SWEEP_SEEDS= (empty) runs each value once with the config's seed.
SWEEP_SEEDS ?= 0,1,2
SWEEP_NOTEBOOKS ?= 04_train_geometry 06_eval_mpjpe
# The base run's last step the sweep starts from: the one before the first swept training
# notebook; all of them for an evaluation-only sweep (SWEEP_NOTEBOOKS=06_eval_mpjpe, eval.* keys).
SWEEP_NOTEBOOK_NAMES = $(patsubst notebooks/%.ipynb,%,$(SWEEP_NOTEBOOKS))
SWEEP_BASE_STEP = $(if $(filter 02_train_2d,$(SWEEP_NOTEBOOK_NAMES)),01_data_prep,$(if $(filter 03_train_depth,$(SWEEP_NOTEBOOK_NAMES)),02_train_2d,$(if $(filter 04_train_geometry,$(SWEEP_NOTEBOOK_NAMES)),03_train_depth,04_train_geometry)))
# REAL_DATA=True: the base run is the real-data one (runs/SWEEP_PROFILE-real, made by the same steps as
# make reproduce REAL_DATA=True) and every cell reads the converted downloads too.
sweep: setup ## papermill sweep of config key SWEEP_PARAM over SWEEP_VALUES x SWEEP_SEEDS (default: geometric-loss weight) -> runs/sweep/SWEEP_PROFILE[-real]/SWEEP_PARAM/
	$(MAKE) --no-print-directory runs/$(SWEEP_PROFILE)$(REAL_SUFFIX)/.stamps/$(SWEEP_BASE_STEP) PROFILE=$(SWEEP_PROFILE) REAL_DATA=$(REAL_DATA)
	$(PY) -m pose3dlib sweep --config configs/$(SWEEP_PROFILE).yaml --param $(SWEEP_PARAM) --values="$(SWEEP_VALUES)" \
	  --seeds="$(SWEEP_SEEDS)" --notebooks $(SWEEP_NOTEBOOKS) --base-run runs/$(SWEEP_PROFILE)$(REAL_SUFFIX) --out runs/sweep \
	  $(if $(REAL_SUFFIX),--real-data) $(REPLACE_FLAG)

#> REPLACE=False | True: sweep, ablation and unseen-check may write a summary without runs or seeds an earlier one in the same folder held (ablation: and retrain arms whose folders hold another recipe)
REPLACE ?= False
REPLACE_FLAG := $(if $(filter True,$(REPLACE)),--replace)

#> ABLATION_PROFILE | the ablation's profile (default PROFILE); ABLATION_SEEDS_BC=0,1,2,3,4, ABLATION_SEEDS_A=0,1,2
#> ABLATION_SCHEDULE | config overrides for every arm alike, space-separated KEY=VALUE (lists without spaces: [1,2]; cpu default: one epoch per stage; empty: the profile's full schedule)
ABLATION_PROFILE ?= $(PROFILE)
ifneq ($(filter ablation,$(MAKECMDGOALS)),)
$(call check_profile,ABLATION_PROFILE)
endif
# Config seeds: arms b and c share Stages 1-2 per seed; arm a trains its own three stages.
ABLATION_SEEDS_BC ?= 0,1,2,3,4
ABLATION_SEEDS_A ?= 0,1,2
# A schedule for every arm alike, as space-separated config overrides. The cpu profile's
# default gives each stage one epoch with no learning-rate drop; everything else is
# configs/cpu.yaml. ABLATION_SCHEDULE= runs the profile's full recipe.
ABLATION_SCHEDULE_cpu = train.stage1.epochs=1 train.stage1.lr_drop_epochs=[] train.stage2.epochs=1 train.stage2.lr_drop_epochs=[]
ABLATION_SCHEDULE ?= $(ABLATION_SCHEDULE_$(ABLATION_PROFILE))
ablation: setup ## the paper's ablation, seeded: (a) 3D only, (b) + 2D-only images, (c) + geometric loss -> runs/ablation/ABLATION_PROFILE/
	$(PY) -m pose3dlib ablation --profile $(ABLATION_PROFILE) --seeds-bc "$(ABLATION_SEEDS_BC)" \
	  --seeds-a "$(ABLATION_SEEDS_A)" $(foreach o,$(ABLATION_SCHEDULE),--set '$(o)') --out runs/ablation/$(ABLATION_PROFILE) $(REPLACE_FLAG)

#> UNSEEN_PROFILE | whose run unseen-check scores (default PROFILE); UNSEEN_SEEDS=39,40 adds sets (default: the record's eleven)
UNSEEN_PROFILE ?= $(PROFILE)
ifneq ($(filter unseen-check,$(MAKECMDGOALS)),)
$(call check_profile,UNSEEN_PROFILE)
endif
# Generator seeds of the new sets, each other than the config's seed (the run's own data). Empty:
# the command's default, the eleven seeds of the committed runs/unseen/cpu record (13 min on an idle 2-core Intel Xeon; the committed record took 54, mostly on shared cores).
UNSEEN_SEEDS ?=
unseen-check: setup ## score runs/UNSEEN_PROFILE's checkpoints on new synthetic people (UNSEEN_SEEDS=39,40: add other seeds) against its metrics.csv -> runs/unseen/UNSEEN_PROFILE/
	$(PY) -m pose3dlib unseen-check --config configs/$(UNSEEN_PROFILE).yaml --run-dir runs/$(UNSEEN_PROFILE) \
	  $(if $(UNSEEN_SEEDS),--seeds "$(UNSEEN_SEEDS)",) --out runs/unseen/$(UNSEEN_PROFILE) $(REPLACE_FLAG)

bench: setup ## time training/inference/data on this machine (CUDA too when present) -> runs/bench/bench.json, docs/benchmarks.md; BENCH_QUICK=1 for a short run
	@echo "bench: load average $$(cut -d' ' -f1-3 /proc/loadavg) (timings are only meaningful on an otherwise idle machine)"
	$(PY) -m pose3dlib bench --out runs/bench/bench.json --doc docs/benchmarks.md

# The GPU machines have Python, torch and the other runtime packages preinstalled but no
# package registry: the check runs from the checkout (PYTHONPATH=.) with that machine's
# python3, never through .venv or `make setup`. A dev machine's dry run uses .venv's python.
#> GPU_PYTHON | the Python that make gpu-check runs (default: .venv's where it exists, else python3)
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
#> BENCH_QUICK=1 | make bench: a short run that never overwrites the committed record; GPU_CHECK_DRY=1: make gpu-check on the CPU, tiny
GPU_CHECK_DRY ?=
gpu-check: ## GPU readiness check (<= 8 min on one H100/H200) -> runs/gpu-check/ (the committed record); GPU_CHECK_DRY=1: tiny sizes on the CPU (< 2 min) -> runs/gpu-check/dry/
	@echo "gpu-check: $(GPU_PYTHON), load average $$(cut -d' ' -f1-3 /proc/loadavg)"
	PYTHONPATH=.$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PYTHON) -m pose3dlib.tools.bench.gpu_check \
	  $(if $(filter-out 0,$(GPU_CHECK_DRY)),--dry --out runs/gpu-check/dry,--out runs/gpu-check --doc docs/benchmarks.md)

lab: setup ## open the project in JupyterLab with the pose3d kernel
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root,)

clean: ## remove the smoke profile's and the tests' run folders, the GPU dry run's, the unseen-check sets, the sweep cells and caches (never another run folder, data/, figures/ or the committed sweep summaries)
	rm -rf runs/smoke runs/test runs/sweep/*/*/value=* runs/ablation/smoke runs/unseen/smoke runs/unseen/*/seed=* runs/gpu-check/dry .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
