# qflow: `make train export synth` runs the main job on CONFIG; `make test` runs the tests.
CONFIG ?= configs/digits_w1a1.yaml
NAME   ?= $(basename $(notdir $(CONFIG)))
BUILD  ?= build/$(NAME)
VENV   ?= .venv
PY     := $(VENV)/bin/python
QFLOW  := $(VENV)/bin/qflow
STAMP  := $(VENV)/.qflow-setup
JOBS   ?= 2
N      ?= 100
PORT   ?=
BOARD  ?= icebreaker

.PHONY: setup train export check verify sim synth hls firmware flash bitstream program report sweep bench test test-all fuzz lint clean

setup: $(STAMP)
$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

train: $(STAMP)
	$(QFLOW) train $(CONFIG) --out $(BUILD)

# the main job: export, then every check against the golden model (check.json)
export: $(STAMP)
	$(QFLOW) export $(BUILD)
	$(QFLOW) check $(BUILD)

check: $(STAMP)
	$(QFLOW) check $(BUILD)

verify: $(STAMP)
	$(QFLOW) verify $(BUILD)

sim: $(STAMP)
	$(QFLOW) sim $(BUILD)

synth: $(STAMP)
	$(QFLOW) synth $(BUILD)
	$(QFLOW) report $(BUILD)

hls: $(STAMP)
	$(QFLOW) hls $(BUILD)

firmware: $(STAMP)
	$(QFLOW) firmware $(BUILD)

flash: $(STAMP)
	$(QFLOW) flash $(BUILD) --port "$(PORT)"

bitstream: $(STAMP)
	$(QFLOW) board build $(BUILD) --board $(BOARD)

program: $(STAMP)
	$(QFLOW) board program $(BUILD) --board $(BOARD) $(if $(PORT),--port $(PORT))

report: $(STAMP)
	$(QFLOW) report $(BUILD)

sweep: $(STAMP)
	$(QFLOW) sweep $(CONFIG) --out $(BUILD)

bench: $(STAMP)
	$(PY) -m bench --out build/bench

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q

test-all: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q -m ""

# N fresh random Brevitas models, MLPs and CNNs (ARCH=mlp|cnn for one; seeds from the clock,
# or START=...), golden vs qonnx's executor (BACKENDS=rtl,hls,firmware adds backends vs
# golden); failures in build/fuzz/<seed>/
fuzz: $(STAMP)
	$(PY) -m tests.fuzz --seeds $(N) --out build/fuzz --arch $(or $(ARCH),both) \
		$(if $(START),--start $(START)) $(if $(BACKENDS),--backends $(BACKENDS))

lint: $(STAMP)
	$(VENV)/bin/ruff check flow tests bench
	$(VENV)/bin/mypy
	bash scripts/lint_hw.sh

clean:
	rm -rf build sim_build .pytest_cache
