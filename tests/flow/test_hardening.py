"""A careless or hostile user's inputs: each gets a clear error naming the file, key, line
or sample, and no command leaves a half-built or mismatched build behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from flow.buildfolder import mark
from flow.cli import main
from flow.data import DataError, load_idx
from flow.train import config
from flow.train.trainer import TRAIN_FILES
from tests.conftest import ROOT
from tests.helpers.buildfolder import snapshot
from tests.helpers.data import write_idx

BAD_CONFIGS = [  # (config text, what the error must say)
    ("model:\n  hiddden: [16]\n", "c.yaml:2: model.hiddden: unknown key"),
    ("model:\n  act: {quant: binary, bits: 4}\n", "c.yaml:2: model.act: bits: binary is a 1-bit"),
    ("train:\n  epochs: 0\n", "c.yaml:2: train.epochs: Input should be greater than or equal to 1"),
    ("model:\n  weight:\n    quant: int\n    bits: eight\n", "c.yaml:4: model.weight.bits"),
    ("train: {batch_size: 0}\n", "c.yaml:1: train.batch_size"),
    ("train:\n  lr: fast\n", "c.yaml:2: train.lr: Input should be a valid number"),
    ("model:\n  weight: {quant: 5}\n", "c.yaml:2: model.weight.quant: Input should be a valid str"),
    ("hardware: {folding: [[4, 0]]}\n", "c.yaml:1: hardware.folding.0.1"),
    ("hardware: {folding: [[1, 1]], target_cycles: 9}\n", "folding and target_cycles"),
    ("hardware: {preset: cnv-w1a1, target_fps: 9}\n", "target_fps and preset: give one way"),
    ("hardware: {preset: cnv-w9a9}\n", "hardware.preset: Input should be 'cnv-w1a1' or"),
    ("data: {name: idx}\n", "data: path: dataset 'idx' needs the path"),
    ("model: {arch: mlp, convs: [8]}\n", "set arch: cnn"),
    ("- just\n- a list\n", "expected a mapping of sections"),
    # hostile: anchors and aliases, keys given twice, names that are no folder names, inf/NaN
    ("model: &m {hidden: [16]}\n", "c.yaml:1: YAML anchor or alias (&m)"),
    ("train: {epochs: 2}\nhardware: {target_cycles: 64}\nname: x\nseed: *s\n",
     "c.yaml:4: YAML anchor or alias (*s)"),
    ("train:\n  epochs: 3\n  lr: 0.1\n  epochs: 30\n",
     "c.yaml:4: train.epochs: given twice (first on line 2)"),
    ("name: ..\n", "name: '..' names the build folder"),
    ("name: .hidden\n", "name: '.hidden' names the build folder"),
    ("name: -rf\n", "name: '-rf' names the build folder"),
    (f"name: {'a' * 101}\n", "1 to 100 letters, digits"),
    ("name: café\n", "name: 'café' names the build folder"),
    ("train: {lr: .inf}\n", "c.yaml:1: train.lr: Input should be a finite number"),
    ("hardware: {target_fps: .nan}\n", "hardware.target_fps: Input should be a finite number"),
    ("seed: 4294967296\n", "c.yaml:1: seed: Input should be less than or equal to 4294967295"),
    ("seed: -1\n", "c.yaml:1: seed: Input should be greater than or equal to 0"),
]


@pytest.mark.parametrize("text,message", BAD_CONFIGS)
def test_config_errors_name_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert message in str(e.value)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_load_and_round_trip(path: Path, tmp_path: Path) -> None:
    """What train writes as the build's config.yaml reads back as the same config."""
    cfg = config.load(path)
    again = tmp_path / "config.yaml"
    again.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert config.load(again) == cfg
    assert cfg["name"] == path.stem


def _digits_config(tmp_path: Path, **train: object) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "digits_w1a1.yaml").read_text())
    cfg["model"]["hidden"] = [16]
    cfg["train"].update({"epochs": 2, "float_baseline": False, **train})
    cfg["hardware"] = {"target_cycles": 64}
    path = tmp_path / "digits_w1a1.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_failed_train_leaves_the_build_alone(digits_build: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    shutil.copytree(digits_build, build)
    before = snapshot(build)
    bad = tmp_path / "other.yaml"
    bad.write_text("name: other\ndata: {name: idx, path: /nonexistent/idx}\n")
    assert main(["train", str(bad), "--out", str(build)]) == 2
    assert snapshot(build) == before  # config.yaml not overwritten; export still consistent


def test_interrupted_train_resumes_and_replaces_the_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    from flow.train import trainer as training

    cfg = _digits_config(tmp_path, epochs=3)
    build = tmp_path / "b"
    build.mkdir()
    mark(build)
    (build / "ir.json").write_text("{}")  # an older build's output, replaced when done
    real_evaluate = training.evaluate
    calls = {"n": 0}

    def evaluate_then_interrupt(*args: object, **kw: object) -> float:
        calls["n"] += 1
        if calls["n"] == 2:  # during the second epoch, after the first checkpoint
            raise KeyboardInterrupt
        return real_evaluate(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(training, "evaluate", evaluate_then_interrupt)
    assert main(["train", str(cfg), "--out", str(build)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["qflow: interrupted (`qflow train --resume` continues from the last epoch)"]
    assert (build / "ir.json").read_text() == "{}"  # the build is untouched meanwhile
    partial = tmp_path / ".b.partial"
    assert (partial / "checkpoint.pt").is_file()
    monkeypatch.setattr(training, "evaluate", real_evaluate)
    assert main(["train", str(cfg), "--out", str(build), "--resume"]) == 0
    result = json.loads((build / "train.json").read_text())
    assert [e["epoch"] for e in result["epochs"]] == [1, 2, 3]
    assert not (build / "ir.json").exists() and not partial.exists()


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    build = tmp_path / "b"
    partial = tmp_path / ".b.partial"
    partial.mkdir()
    mark(partial)
    first = config.load(_digits_config(tmp_path))
    (partial / "config.yaml").write_text(yaml.safe_dump(first))
    changed = _digits_config(tmp_path, lr=0.5)
    with pytest.raises(config.ConfigError, match="in what training reads"):
        from flow.train.trainer import train
        train(changed, build, resume=True)


def test_train_refuses_a_folder_that_is_not_a_build(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    assert main(["train", str(_digits_config(tmp_path)), "--out", str(tmp_path)]) == 2
    assert "is not a qflow build" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_failed_export_and_compile_leave_the_previous_build(
        digits_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flow import backends, export

    build = tmp_path / "build"
    shutil.copytree(digits_build, build)
    before = snapshot(build)

    def failing_hls(model: object, build_dir: Path) -> Path:
        (Path(build_dir) / "hls").mkdir()
        raise RuntimeError("hls: generation failed")

    real_get = backends.get
    monkeypatch.setattr(backends, "get", lambda name: type(
        "Failing", (), {"generate": staticmethod(failing_hls),
                        "LAYER_KINDS": real_get(name).LAYER_KINDS,
                        "ACTIVATIONS": real_get(name).ACTIVATIONS})
        if name == "hls" else real_get(name))
    with pytest.raises(RuntimeError, match="hls: generation failed"):
        export.export_build(build)
    assert snapshot(build) == before
    for f in TRAIN_FILES:  # as `qflow compile` leaves a build (it never replaces a training)
        (build / f).unlink(missing_ok=True)
    before = snapshot(build)
    with pytest.raises(RuntimeError, match="hls: generation failed"):
        export.compile_onnx(build / "model.qonnx.onnx", build, {})
    assert snapshot(build) == before
    with pytest.raises(RuntimeError):
        export.compile_onnx(build / "model.qonnx.onnx", tmp_path / "new", {})
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_compile_checks_out_folder_and_dataset(digits_build: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths, from another working directory
    shutil.copy(digits_build / "model.qonnx.onnx", "m.onnx")
    Path("mine").mkdir()
    Path("mine/notes.txt").write_text("keep")
    assert main(["compile", "m.onnx", "--out", "mine"]) == 2
    assert "mine: holds 'notes.txt' and is not a qflow build" in capsys.readouterr().err
    idx = Path("idx")
    idx.mkdir()
    for split in ("train", "t10k"):
        write_idx(idx, split, 20, gz=False)
    assert main(["compile", "m.onnx", "--out", "b", "--dataset", "idx",
                 "--data-path", "idx"]) == 2
    assert "samples of shape (1, 5, 7); the model takes (1, 8, 8)" in capsys.readouterr().err
    assert not Path("b").exists()


def test_run_rejects_bad_inputs_by_file(digits_build: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    build = tmp_path / "build"
    shutil.copytree(digits_build, build)
    monkeypatch.chdir(tmp_path)
    nan = np.zeros((3, 1, 8, 8), np.float32)
    nan[2, 0, 1, 1] = np.nan
    cases = {
        "empty.npy": (np.zeros((0, 1, 8, 8), np.float32), "empty batch"),
        "scalar.npy": (np.float32(1.0), "a single value"),
        "nan.npy": (nan, "sample 2, value 9 is nan"),
        "complex.npy": (np.ones((2, 1, 8, 8), np.complex64), "complex inputs"),
        "shape.npy": (np.zeros((2, 5), np.float32), "the model takes (1, 8, 8)"),
    }
    for name, (x, message) in cases.items():
        np.save(name, x)
        assert main(["run", "build", "--inputs", name, "--outputs", "y.npy"]) == 2, name
        err = capsys.readouterr().err
        assert name in err and message in err, err
    Path("out").mkdir()
    np.save("ok.npy", np.zeros((2, 1, 8, 8), np.float32))
    assert main(["run", "build", "--inputs", "ok.npy", "--outputs", "out"]) == 2
    assert "--outputs out: is a folder" in capsys.readouterr().err
    assert main(["run", "build", "--inputs", "ok.npy", "--outputs", "y.npy"]) == 0
    assert np.load("y.npy").shape == (2, 10)


def test_verify_takes_a_dynamic_batch(digits_build: Path, tmp_path: Path) -> None:
    import onnx

    from flow.export import compile_onnx
    from flow.verify import verify

    g = onnx.load(digits_build / "model.qonnx.onnx")
    for v in (g.graph.input[0], g.graph.output[0]):
        v.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(g, tmp_path / "dyn.onnx")
    compile_onnx(tmp_path / "dyn.onnx", tmp_path / "b", {"target_cycles": 64},
                 {"name": "digits"})
    r = verify(tmp_path / "b", limit=4)
    assert r["agreement"]["qonnx_executor"]["equal"] == 4


def test_idx_labels_must_be_the_classes(tmp_path: Path) -> None:
    from flow.data import IDX_LABELS, read_idx

    for split in ("train", "t10k"):
        write_idx(tmp_path, split, 30, gz=False)
    labels_path = tmp_path / "train-labels-idx1-ubyte"
    raw = bytearray(labels_path.read_bytes())
    labels = read_idx(labels_path, IDX_LABELS)
    i = int(np.flatnonzero(labels == labels.max())[0])
    raw[8 + i] = 200
    labels_path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=f"train-labels-idx1-ubyte: .* sample {i} has label 200"):
        load_idx(tmp_path)


def test_moved_rtl_folder_is_current(digits_default: tuple, tmp_path: Path) -> None:
    """rtl/ names its files relative to itself: a moved build is still current and is read
    where it now lies, without regeneration."""
    from flow.backends.rtl import generate, up_to_date
    from flow.backends.rtl.generate import current_manifest

    model, _ = digits_default
    generate(model, tmp_path / "a")
    shutil.move(tmp_path / "a", tmp_path / "b")
    assert up_to_date(model, tmp_path / "b")
    manifest = current_manifest(model, tmp_path / "b")
    assert all(str(tmp_path / "b") in f for f in manifest["mem_files"])


def test_generator_code_is_in_every_fingerprint(tmp_path: Path) -> None:
    """A generated folder is stale once the code that generated it changes, not only its IR
    or its hand-written blocks: every generator's fingerprint sources hold its own Python."""
    from flow.backends import firmware, hls
    from flow.backends.rtl.generate import generator_sources
    from flow.board.shell import hw_sources
    from flow.fingerprint import is_current, python_sources, write_stamp
    from flow.synthetic import random_model

    for sources, generator in ((generator_sources(), "top.py"),
                               (hls.template_sources(), "top.py"),
                               (firmware.generator_sources(), "emit.py"),
                               (hw_sources(), "shell.py")):
        names = {p.name for p in sources}
        assert {generator, "packing.py"} <= names, names
    assert python_sources("flow.packing") == [ROOT / "flow" / "packing.py"]
    with pytest.raises(ValueError, match="no module flow.nothing"):
        python_sources("flow.nothing")
    code = tmp_path / "generator.py"
    code.write_text("VERSION = 1\n")
    model = random_model([4, 2], ["INT2"], [], "UINT2", [(1, 1)])
    write_stamp(tmp_path, model, [code])
    assert is_current(tmp_path, model, [code])
    code.write_text("VERSION = 2\n")
    assert not is_current(tmp_path, model, [code])
