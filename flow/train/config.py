"""Build configs (YAML): what to train, on what data, and how to fold it into hardware.

The schema below is the whole config language: every key, its type and range, and its
default. Unknown keys are errors, and every error names the file, the key and its line.
`load` returns the config as a plain dict with the defaults filled in (what `qflow train`
writes to the build's config.yaml).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flow.train.quantizers import ACT_OPTIONS, WEIGHT_OPTIONS

PositiveInt = Annotated[int, Field(strict=True, ge=1)]
Bits = Annotated[int, Field(strict=True, ge=1, le=8)]
NAME_MAX = 100  # the name becomes a folder name (build/<name>, .<name>.partial)
NAME = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}")
MAX_CONFIG_BYTES = 1 << 16  # a config is a page of YAML; anything this big is the wrong file
# libyaml: linear scanning and a nesting limit (pure-Python PyYAML is quadratic in nesting)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A config the flow cannot use; the message names the file and the key."""


class Section(BaseModel):
    # no inf or NaN: `lr: .inf` would train NaNs, `target_fps: .inf` fold nothing
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class QuantSpec(Section):
    """One quantizer: its method (see flow/train/quantizers.py), bits and scale options."""

    quant: str = "binary"
    bits: Bits | None = None
    per_channel: bool | None = None
    po2: bool | None = None
    max_val: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _bits_fit_method(self) -> QuantSpec:
        if self.quant.startswith("binary") and self.bits not in (None, 1):
            raise ValueError(f"bits: {self.quant} is a 1-bit quantizer; remove bits "
                             f"or choose a multi-bit method (int, uint, ...)")
        return self


class WeightQuantSpec(QuantSpec):
    frac_bits: Annotated[int, Field(strict=True, ge=0, le=32)] | None = None  # fixed: FL
    rounding: Literal["stochastic", "nearest"] | None = None  # fixed: rounding of updates
    grad_bits: Annotated[int, Field(strict=True, ge=2, le=16)] | None = None  # wage: k_G

    @model_validator(mode="after")
    def _known(self) -> WeightQuantSpec:
        if self.quant not in WEIGHT_OPTIONS:
            raise ValueError(f"quant: {self.quant!r} is not one of {', '.join(WEIGHT_OPTIONS)}")
        if self.quant == "ternary" and self.bits not in (None, 2):
            raise ValueError("bits: ternary weights are 2-bit; remove bits")
        if self.quant == "fixed" and self.frac_bits is None:
            raise ValueError("frac_bits: fixed-point weights need a fraction length (FL)")
        for key, method in (("frac_bits", "fixed"), ("rounding", "fixed"), ("grad_bits", "wage")):
            if getattr(self, key) is not None and self.quant != method:
                raise ValueError(f"{key}: only {method} weights take {key}")
        if self.quant in ("wage", "fixed") and self.bits == 1:
            raise ValueError(f"bits: {self.quant} weights need at least 2 bits")
        return self


class ActQuantSpec(QuantSpec):
    # int/uint: a constant range [-max_val, max_val] / [0, max_val] (const), or Brevitas' learned
    # scale initialised from runtime statistics (stats: Int8ActPerTensorFloat and its kin)
    scaling: Literal["const", "stats"] | None = None

    @model_validator(mode="after")
    def _known(self) -> ActQuantSpec:
        if self.quant not in ACT_OPTIONS:
            raise ValueError(f"quant: {self.quant!r} is not one of {', '.join(ACT_OPTIONS)}")
        if self.scaling is not None and self.quant not in ("int", "uint"):
            raise ValueError(f"scaling: only int and uint activations take scaling, not "
                             f"{self.quant}")
        if self.scaling == "stats" and self.max_val is not None:
            raise ValueError("max_val: a statistics-initialised scale has no constant range; "
                             "remove max_val or set scaling: const")
        return self


class GradQuantSpec(Section):
    """The backward pass's quantizer: DoReFa's k-bit gradients of every weighted layer's
    output, or WAGE's k_E-bit errors after every activation quantizer."""

    quant: Literal["dorefa", "wage"]
    bits: Bits = 8


class DataSpec(Section):
    name: Literal["digits", "fashion-mnist", "idx", "npz"] = "digits"
    path: str | None = None

    @model_validator(mode="after")
    def _path(self) -> DataSpec:
        if self.name == "idx" and self.path is None:
            raise ValueError("path: dataset 'idx' needs the path of an MNIST-format IDX folder")
        if self.name == "npz" and self.path is None:
            raise ValueError("path: dataset 'npz' needs the path of a .npz file (x, y)")
        if self.name == "digits" and self.path is not None:
            raise ValueError("path: the digits dataset ships with scikit-learn; remove path")
        return self


class ModelSpec(Section):
    arch: Literal["mlp", "cnn"] = "mlp"
    topology: Literal["tfc", "sfc", "lfc", "cnv"] | None = None
    hidden: list[PositiveInt] | None = None  # dense widths (after the convolutions for cnn)
    convs: list[PositiveInt | Literal["pool"]] | None = None  # cnn: channels, or a 2x2 max pool
    kernel: PositiveInt = 3
    padding: Annotated[int, Field(strict=True, ge=0)] = 1
    input: ActQuantSpec = Field(default_factory=lambda: ActQuantSpec(quant="uint", bits=8,
                                                                     max_val=1.0))
    weight: WeightQuantSpec = Field(default_factory=WeightQuantSpec)
    act: ActQuantSpec = Field(default_factory=ActQuantSpec)
    last_weight: WeightQuantSpec | None = None
    grad: GradQuantSpec | None = None
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # a batch norm after every weighted layer; without it, power-of-two quantizers keep every
    # factor of the integer pipeline a power of two (an exact requantization)
    batch_norm: bool = True

    @model_validator(mode="after")
    def _arch(self) -> ModelSpec:
        cnn_topology = self.topology == "cnv"
        if self.arch == "mlp" and (self.convs is not None or cnn_topology):
            raise ValueError("convs: an mlp has no convolutions; set arch: cnn")
        if self.arch == "cnn" and self.topology in ("tfc", "sfc", "lfc"):
            raise ValueError(f"topology: {self.topology} is an mlp topology; set arch: mlp")
        if self.topology is not None and (self.hidden is not None or self.convs is not None):
            raise ValueError("topology: give a topology or hidden/convs, not both")
        if self.hidden == []:
            raise ValueError("hidden: expected at least one width")
        wage = self.weight.quant == "wage"
        if wage != (self.act.quant == "wage"):
            raise ValueError("act: WAGE quantizes weights and activations together; set "
                             "weight.quant and act.quant both to wage, or neither")
        if self.last_weight is not None and (self.last_weight.quant == "wage") != wage:
            raise ValueError("last_weight: a WAGE model's layers are all wage (no batch norm)")
        if (self.grad is not None and self.grad.quant == "wage") and not wage:
            raise ValueError("grad: WAGE's error quantizer belongs to a WAGE model (weight: wage)")
        if wage and not self.batch_norm:
            raise ValueError("batch_norm: WAGE has no batch norm (its shift scaling takes the "
                             "place); remove batch_norm")
        if wage and self.grad is None:  # WAGE's default 2-8-8-8
            self.grad = GradQuantSpec(quant="wage", bits=8)
        return self


class AugmentSpec(Section):
    """Random transforms of each training batch (never of validation or test data)."""

    # translation by up to this many pixels each way, zero fill
    shift: Annotated[int, Field(strict=True, ge=0, le=8)] = 0
    flip: bool = False  # horizontal flip of half the images (clothing yes, digits no)


class TrainSpec(Section):
    epochs: PositiveInt = 20
    batch_size: Annotated[int, Field(strict=True, ge=2)] = 64  # batch norm needs two samples
    lr: Annotated[float, Field(gt=0)] = 0.01
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    optimizer: Literal["adam", "sgd", "wage"] = "adam"  # wage: WAGE's integer update rule
    mode: Literal["qat", "ptq"] = "qat"
    float_baseline: bool = False
    calibration_batches: PositiveInt = 20
    float_epochs: PositiveInt | None = None
    # QAT starts from the float baseline's weights (its quantizers' own parameters at init)
    init: Literal["random", "float"] = "random"
    augment: AugmentSpec | None = None

    @model_validator(mode="after")
    def _float_to_start_from(self) -> TrainSpec:
        if self.init == "float" and not (self.float_baseline and self.mode == "qat"):
            raise ValueError("init: float starts QAT from the float baseline; set "
                             "float_baseline: true (and mode: qat)")
        return self


class HardwareSpec(Section):
    folding: list[Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]] | None = None
    # ^ [PE, SIMD] per layer
    target_cycles: PositiveInt | None = None
    target_fps: Annotated[float, Field(gt=0)] | None = None
    clock_mhz: Annotated[float, Field(gt=0)] = 100.0
    preset: Literal["cnv-w1a1", "cnv-w2a2"] | None = None  # finn-examples' folding

    @model_validator(mode="after")
    def _one_way(self) -> HardwareSpec:
        given = [k for k in ("folding", "target_cycles", "target_fps", "preset")
                 if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"{' and '.join(given)}: give one way of folding, not several")
        return self


class LowerSpec(Section):
    """How the lowering forms hidden layers' activations (see flow/lower/__init__.py)."""

    activation: Literal["thresholds", "requant", "auto"] = "auto"
    # requantizations' rounding (flow.ir.Requant): QONNX's, or TFLite's double rounding
    rounding: Literal["half_even", "tflite"] = "half_even"


class FirmwareSpec(Section):
    chip: Literal["esp32", "esp32c3", "esp32s3"] = "esp32"


Stage = Literal["verify", "synth", "firmware"]
STAGES: tuple[Stage, ...] = ("verify", "synth", "firmware")


class ExploreSpec(Section):
    """`qflow explore`: the design space (weight bits x activation bits x folding targets;
    1 bit means binary) and the stages each point runs after training."""

    weight_bits: list[Bits] = Field(default_factory=lambda: [1, 2, 4], min_length=1)
    act_bits: list[Bits] = Field(default_factory=lambda: [1, 2, 4], min_length=1)
    target_cycles: list[PositiveInt] | None = None  # folding targets (default: hardware's)
    target_fps: list[Annotated[float, Field(gt=0)]] | None = None  # at hardware.clock_mhz
    stages: list[Stage] = Field(default_factory=lambda: list(STAGES))
    limit: PositiveInt = 200  # test samples that verify and firmware run

    @model_validator(mode="after")
    def _one_target(self) -> ExploreSpec:
        if self.target_cycles is not None and self.target_fps is not None:
            raise ValueError("target_cycles and target_fps: give one kind of folding target")
        return self


class Config(Section):
    name: str  # the config file's name unless given
    seed: Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)] = 0  # numpy's seed range
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    lower: LowerSpec = Field(default_factory=LowerSpec)
    hardware: HardwareSpec = Field(default_factory=HardwareSpec)
    firmware: FirmwareSpec = Field(default_factory=FirmwareSpec)
    explore: ExploreSpec | None = None

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not NAME.fullmatch(name):
            raise ValueError(f"{name!r} names the build folder (the config file's name unless "
                             f"name: is set): 1 to {NAME_MAX} letters, digits, _ . or -, not "
                             "starting with . or -")
        return name

    @model_validator(mode="after")
    def _wage_update(self) -> Config:
        if (self.model.weight.quant == "wage") != (self.train.optimizer == "wage"):
            raise ValueError("train.optimizer: WAGE weights are updated by WAGE's rule and it "
                             "updates only them; use weight.quant wage with optimizer wage")
        if self.train.optimizer == "wage" and (self.train.mode == "ptq" or self.train.float_baseline):
            raise ValueError("train: WAGE trains its integer weights by its own rule; its float "
                             "twin has no such rule (no ptq mode, no float_baseline)")
        return self


def _lines(path: Path, node: yaml.Node, keys: tuple[Any, ...] = ()
           ) -> dict[tuple[Any, ...], int]:
    """Every key path of a YAML document -> its 1-based line; a key given twice in one
    mapping is an error (YAML would silently keep the last)."""
    out = {keys: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            line = k.start_mark.line + 1
            if k.value in seen:
                raise ConfigError(f"{path}:{line}: {'.'.join(map(str, (*keys, k.value)))}: "
                                  f"given twice (first on line {seen[k.value]})")
            seen[k.value] = line
            out[(*keys, k.value)] = line
            out.update({p: n for p, n in _lines(path, v, (*keys, k.value)).items()
                        if p != (*keys, k.value)})
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out.update(_lines(path, v, (*keys, i)))
    return out


def _message(path: Path, e: ValidationError, lines: dict[tuple[Any, ...], int]) -> str:
    problems = []
    for err in e.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x[:1].isupper()))
        key = ".".join(str(x) for x in loc) or "(top level)"
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (a typo?)"
        elif err["type"] == "missing":
            msg = "required key missing"
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {key}: {msg}")
    return "\n".join(problems)


def validate(doc: Any, path: Path, lines: dict[tuple[Any, ...], int] | None = None
             ) -> dict[str, Any]:
    """A parsed config document -> the config with defaults (ConfigError naming the key)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of sections "
                          f"({', '.join(Config.model_fields)})")
    doc = {"name": path.stem, **doc}
    try:
        cfg = Config.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(_message(path, e, lines or {})) from None
    return cfg.model_dump(exclude_none=True)


def _read(path: Path) -> str:
    """The text of a config file: a regular file (not a folder, FIFO or device, which
    would hang or never end), of config size, UTF-8 text."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file (a config is a YAML file)")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {info.st_size} bytes; a config is a YAML file of at "
                              f"most {MAX_CONFIG_BYTES} bytes (is this the right file?)")
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        text = ""
        offset = e.start
    else:
        offset = text.find("\0")
    if offset >= 0:
        raise ConfigError(f"{path}: a binary file, not YAML text (byte {offset} is "
                          f"0x{raw[offset]:02x}; a config is UTF-8 text)")
    return text


def _refuse_aliases(path: Path, text: str) -> None:
    """Anchors and aliases let a few lines expand exponentially (a 'billion laughs' bomb
    hangs the loader); a config has no use for them. Scanning tokens is linear."""
    for token in yaml.scan(text, Loader=YAML_LOADER):
        if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
            sign = "&" if isinstance(token, yaml.AnchorToken) else "*"
            raise ConfigError(f"{path}:{token.start_mark.line + 1}: YAML anchor or alias "
                              f"({sign}{token.value}): configs do not take anchors or aliases; "
                              "write the values out")


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    text = _read(path)
    loader = YAML_LOADER(text)
    try:
        _refuse_aliases(path, text)
        node = loader.get_single_node()
        lines = _lines(path, node) if node is not None else {}
        doc = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    finally:
        loader.dispose()
    return validate(doc, path, lines)
