# The Open Model Safety Gap: build, test and benchmark the executable book.
#
#   make book   install into $(VENV) if needed, run every chapter, write _build/html
#   make test   install into $(VENV) if needed, run the test suite
#   make linkcheck  check every internal link and anchor of the built book
#
# Variables (override on the command line, e.g. `make book VENV=/opt/sg-venv`):
#   PYTHON          interpreter used to create the virtual environment
#   VENV            where the virtual environment lives
#   BENCHMARK_ARGS  arguments for scripts/benchmark_build.py (`make benchmark`)
#   CHAPTER         the chapter `make chapter` runs: the start of its file name (01, 02, 06, ...)
#   MODE            book (the default) or student: the size `make chapter` runs at (SAFETYGAP_MODE)

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

# Written after a successful install; the environment is rebuilt only when one
# of the files that define it is newer than this stamp.
STAMP  := $(VENV)/.installed

# By default the benchmark reuses $(VENV) and so times the build, not the
# install; `make benchmark BENCHMARK_ARGS=` times a full install too.
BENCHMARK_ARGS ?= --reuse-venv $(VENV)
CHAPTER ?=
MODE    ?= book

.DEFAULT_GOAL := help
.PHONY: help venv book test chapter student linkcheck benchmark clean

help:  ## Show this help
	@echo "Targets:"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{ printf "  make %-10s %s\n", $$1, $$2 }'
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) CHAPTER=$(CHAPTER) MODE=$(MODE) BENCHMARK_ARGS='$(BENCHMARK_ARGS)'"

venv: $(STAMP)  ## Create the virtual environment and install the pinned packages

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

# First clear Jupyter Book's execution cache if the package, data or pins changed
# (its cache keys hash only the notebooks' own text), then build.
# -W: warnings are errors; -n: nitpicky cross-references;
# --keep-going: report every warning before failing.
book: venv  ## Execute every chapter and build the HTML book in _build/html
	$(BIN)/python -m safetygap.book.bookstate
	$(BIN)/jupyter-book build . -W -n --keep-going

test: venv  ## Run the test suite (unit and reduced-size end-to-end tests)
	$(BIN)/python -m pytest

linkcheck: venv  ## Check every internal link and #anchor of the built book (_build/html)
	$(BIN)/python scripts/check_links.py _build/html

# One chapter, executed as the book build executes it, in either mode (scripts/run_chapter.py); the
# executed notebook goes to _build/run/. Works from any directory: make -C /path/to/book chapter CHAPTER=02.
chapter: venv  ## Run one chapter: make chapter CHAPTER=02 MODE=student (prints its time)
	@test -n "$(CHAPTER)" || { echo "make chapter needs CHAPTER, e.g. make chapter CHAPTER=02 MODE=student"; exit 2; }
	SAFETYGAP_MODE=$(MODE) $(BIN)/python scripts/run_chapter.py $(CHAPTER)

student: venv  ## Write the student edition (notebooks, solutions replaced by stubs) to _build/student
	$(BIN)/python -m safetygap.book.exercises.edition _build/student

benchmark: venv  ## Time a cold build from a fresh clone; writes data/benchmarks/build.json
	$(BIN)/python scripts/benchmark_build.py $(BENCHMARK_ARGS)

clean:  ## Remove the built book and the artifact cache (keeps the venv)
	rm -rf _build .cache
