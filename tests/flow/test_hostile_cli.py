"""Hostile and careless inputs to the command line, input files, ONNX files and the IR:
each is refused with one clear line naming the file, node, layer or argument, before
anything runs, and nothing of the user's is lost or executed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from flow.cli import main
from tests.helpers.backends import only_check


@pytest.fixture
def build(digits_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained digits build (input (1, 8, 8)), the cwd its parent."""
    shutil.copytree(digits_build, tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "b"


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], *parts: str) -> str:
    """main(argv) fails with exit 2 and one message holding every part."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's refusal
        code = int(e.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    for part in parts:
        assert part in err, err
    return err


def test_inputs_in_another_layout_are_refused(build: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    x = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32) * 16
    np.save("hwc.npy", x.transpose(0, 2, 3, 1))  # the same 64 values per sample
    np.save("flat.npy", x.reshape(20, 64))
    np.save("one.npy", x[0])
    for args in (["verify", "b", "--strict"], ["run", "b", "--outputs", "y.npy"],
                 ["firmware", "b"]):
        refused([*args, "--inputs", "hwc.npy"], capsys, "hwc.npy", "(20, 8, 8, 1)",
                "[N, 1, 8, 8]", "channels first")
    refused(["run", "b", "--inputs", "flat.npy", "--outputs", "y.npy"], capsys, "flat.npy",
            "(20, 64)", "the model takes (1, 8, 8)")
    refused(["run", "b", "--inputs", "one.npy", "--outputs", "y.npy"], capsys, "one.npy",
            "without the batch axis")
    assert not Path("y.npy").exists()
    from flow.inputs import InputError
    from flow.verify import verify

    with pytest.raises(InputError, match=r"\(8, 8, 1\)"):
        verify(build, x=x.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("command", ["verify", "check", "sim", "hls", "firmware"])
@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_non_positive_limit_is_refused_by_the_parser(
        build: Path, command: str, limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    refused([command, "b", "--limit", limit], capsys, "argument --limit", limit,
            "must be a whole number of 1 or more" if limit != "x" else "not a whole number")
    assert not (build / f"{command}.json").exists() and not (build / "verify.json").exists()


def test_non_positive_limit_is_refused_by_the_library(build: Path) -> None:
    from flow.backends.check import run_check
    from flow.check import check_build
    from flow.inputs import InputError, command_codes
    from flow.ir import load
    from flow.verify import verify

    model = load(build)
    for limit in (0, -1):
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            verify(build, limit)
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            check_build(build, limit)
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            command_codes(model, None, limit)
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            run_check("sim", build, None, limit, lambda *a: ({}, {}))
    assert len(command_codes(model, None, 3)) == 3


@pytest.mark.parametrize(("option", "value"), [
    ("--target-cycles", "0"), ("--target-cycles", "-5"), ("--target-fps", "0"),
    ("--target-fps", "nan"), ("--target-fps", "inf"), ("--target-fps", "-1"),
    ("--clock-mhz", "0"), ("--clock-mhz", "nan")])
def test_folding_targets_must_be_positive_and_finite(
        tfc_onnx: Path, tmp_path: Path, option: str, value: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    refused(["compile", str(tfc_onnx), "--out", str(tmp_path / "o"), option, value], capsys,
            f"argument {option}", value)
    assert not (tmp_path / "o").exists()


def test_cycles_for_fps_refuses_nan_and_inf() -> None:
    from flow.folding import cycles_for_fps

    for fps, clock in ((float("nan"), 100.0), (float("inf"), 100.0), (30.0, float("inf"))):
        with pytest.raises(ValueError, match="positive and finite"):
            cycles_for_fps(fps, clock)


def test_external_data_outside_the_model_folder_is_refused(tfc_onnx: Path,
                                                           tmp_path: Path) -> None:
    """A tensor's external data must be a file of the model's folder; what is read becomes
    part of the model the build keeps."""
    import onnx
    from onnx import external_data_helper

    from flow.frontends.onnxfile import copy_self_contained
    from flow.lower import LoweringError, lower

    model_dir, elsewhere = tmp_path / "model", tmp_path / "elsewhere"
    model_dir.mkdir()
    elsewhere.mkdir()
    m = onnx.load(str(tfc_onnx))
    external_data_helper.convert_model_to_external_data(m, location="w.bin", size_threshold=0)
    onnx.save(m, str(model_dir / "m.onnx"))
    lower(model_dir / "m.onnx")  # data beside the model: read
    copy_self_contained(model_dir / "m.onnx", tmp_path / "copy.onnx")
    copied = onnx.load(str(tmp_path / "copy.onnx"), load_external_data=False)
    assert not any(external_data_helper.uses_external_data(t) for t in copied.graph.initializer)
    lower(tmp_path / "copy.onnx")  # the copy needs nothing beside it

    (model_dir / "w.bin").rename(elsewhere / "w.bin")
    (model_dir / "w.bin").symlink_to(elsewhere / "w.bin")
    with pytest.raises(LoweringError, match=r"m\.onnx: tensor .*'w\.bin': leads to .*elsewhere"):
        lower(model_dir / "m.onnx")
    with pytest.raises(LoweringError, match="outside the model's folder"):
        copy_self_contained(model_dir / "m.onnx", tmp_path / "copy2.onnx")
    for location in ("../elsewhere/w.bin", str(elsewhere / "w.bin")):
        for t in m.graph.initializer:
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(m, str(model_dir / "m.onnx"))
        with pytest.raises(LoweringError, match="must be a file inside the model's folder"):
            lower(model_dir / "m.onnx")


def mutated(src: Path, dest: Path, edit: object) -> Path:
    """A copy of the ONNX file at `src` with `edit(model)` applied."""
    import onnx

    m = onnx.load(str(src))
    edit(m)  # type: ignore[operator]
    onnx.save(m, str(dest))
    return dest


def set_input_dims(dims: list[int]) -> object:
    def edit(m: object) -> None:
        for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim, dims, strict=True):  # type: ignore[attr-defined]
            d.dim_value = v
    return edit


def test_malformed_and_oversized_onnx_files_name_the_file(digits_build: Path,
                                                          tmp_path: Path) -> None:
    from flow.lower import LoweringError, lower

    src = digits_build / "model.qonnx.onnx"
    data = src.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.onnx").write_text("hello\n")
    (tmp_path / "empty.onnx").write_bytes(b"")

    def no_nodes(m: object) -> None:
        del m.graph.node[:]  # type: ignore[attr-defined]

    def cycle(m: object) -> None:  # the first quantizer takes the last node's output
        m.graph.node[1].input[0] = m.graph.node[-1].output[0]  # type: ignore[attr-defined]

    cases = {
        "truncated.onnx": "not an ONNX file or truncated",
        "text.onnx": "not an ONNX file or truncated",
        "empty.onnx": "an empty file (0 bytes)",
        mutated(src, tmp_path / "nodes.onnx", no_nodes).name: "the graph has no nodes",
        mutated(src, tmp_path / "cycle.onnx", cycle).name: "is on a cycle",
        mutated(src, tmp_path / "huge.onnx", set_input_dims([1, 100000, 100000, 1])).name:
            "10000000000 values per sample, more than qflow's limit of 4194304",
        mutated(src, tmp_path / "zero.onnx", set_input_dims([1, 0, 8, 8])).name:
            "(0, 8, 8): every dimension must be 1 or more",
        mutated(src, tmp_path / "negative.onnx", set_input_dims([1, 1, -8, 8])).name:
            "(1, -8, 8): every dimension must be 1 or more",
    }
    for name, message in cases.items():
        with pytest.raises(LoweringError) as e:
            lower(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and message in str(e.value), str(e.value)


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small binary CNN on (1, 8, 8): Conv 3x3 pad 1, MaxPool 2, dense layers."""
    import torch

    from flow.export import export_qonnx
    from tests.helpers.models import BIN, U8, SmallCNN, randomized

    net = randomized(SmallCNN((1, 8, 8), [{"out": 4, "pad": 1, "pool": "after"}], U8, BIN,
                              BIN), (1, 8, 8), 0)
    return export_qonnx(net, torch.rand(1, 1, 8, 8), tmp_path_factory.mktemp("cnn") / "c.onnx")


@pytest.mark.parametrize(("op", "attr", "value", "message"), [
    ("Conv", "strides", [0, 1], "positive kernel and strides"),
    ("Conv", "pads", [-1, 0, 0, 0], "4 pads >= 0"),
    ("MaxPool", "pads", [2, 2, 2, 2], "padding only: ONNX's MaxPool outputs -inf"),
    ("Conv", "dilations", [2, 2], "dilations [2, 2] are not supported"),
    ("MaxPool", "strides", [0, 0], "positive kernel and strides"),
    ("MaxPool", "kernel_shape", [0, 2], "positive kernel and strides"),
    ("MaxPool", "kernel_shape", [5000, 5000], "every dimension must be 1 or more"),
])
def test_window_attributes_are_checked_before_use(cnn_onnx: Path, tmp_path: Path, op: str,
                                                  attr: str, value: list[int],
                                                  message: str) -> None:
    from onnx import helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        node = next(n for n in m.graph.node if n.op_type == op)  # type: ignore[attr-defined]
        kept = [a for a in node.attribute if a.name != attr]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(attr, value)])

    lower(cnn_onnx)
    path = mutated(cnn_onnx, tmp_path / "m.onnx", edit)
    with pytest.raises(LoweringError, match=f"m.onnx: node .*{op}.*: .*{message}".replace(
            "[", r"\[").replace("]", r"\]")):
        lower(path)


def test_huge_pool_output_is_refused_before_it_is_made(cnn_onnx: Path, tmp_path: Path) -> None:
    from onnx import helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:  # kernel 4097 with pads 4096 on each side, stride 1
        node = next(n for n in m.graph.node if n.op_type == "MaxPool")  # type: ignore[attr-defined]
        del node.attribute[:]
        node.attribute.extend([helper.make_attribute("kernel_shape", [4097, 4097]),
                               helper.make_attribute("pads", [4096] * 4),
                               helper.make_attribute("strides", [1, 1])])

    with pytest.raises(LoweringError, match="more than qflow's limit of 4194304 per tensor"):
        lower(mutated(cnn_onnx, tmp_path / "m.onnx", edit))


@pytest.mark.parametrize(("index", "value", "message"), [
    (1, 0.0, "scale .* must be finite and nonzero"),
    (1, float("nan"), "scale .* must be finite and nonzero"),
    (3, 0.0, "bit width 0.0 must be one integer in 1..32"),
    (3, 64.0, "bit width 64.0 must be one integer in 1..32"),
    (2, 0.5, "zero point must be an integer"),
])
def test_quantizer_parameters_name_the_node(digits_build: Path, tmp_path: Path, index: int,
                                            value: float, message: str) -> None:
    from onnx import numpy_helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        q = next(n for n in m.graph.node if n.op_type == "Quant")  # type: ignore[attr-defined]
        for t in m.graph.initializer:  # type: ignore[attr-defined]
            if t.name == q.input[index]:
                t.CopyFrom(numpy_helper.from_array(
                    np.full(tuple(t.dims), value, np.float32), t.name))

    path = mutated(digits_build / "model.qonnx.onnx", tmp_path / "m.onnx", edit)
    with pytest.raises(LoweringError, match=f"m.onnx: node .*Quant.*: {message}"):
        lower(path)


@pytest.mark.parametrize("argv", [["--backends", "nonsense"], ["--backends", "rtl,golden"],
                                  ["--seeds", "0"], ["--seeds", "-3"], ["--start", "-1"]])
def test_fuzz_refuses_bad_arguments_before_drawing(argv: list[str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tests import fuzz

    with pytest.raises(SystemExit) as e:
        fuzz.main([*argv, "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err, err
    assert not any(tmp_path.iterdir())


def test_check_without_the_rv32_tools_runs_the_host_part(
        build: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """No RISC-V compiler or QEMU: the firmware check runs on the host, skips RV32 with the
    reason (firmware.json, the log), and check.json is written anew."""
    import json
    import logging

    from flow.backends.firmware import TARGETS, toolchain

    real_which = toolchain.shutil.which

    def which(name: str, *args: object, **kwargs: object) -> str | None:
        return None if name in TARGETS["rv32"].tools else real_which(name)

    monkeypatch.setattr(toolchain.shutil, "which", which)
    only_check(monkeypatch, "firmware")
    (build / "check.subset.json").write_text('{"stale": true}\n')
    with caplog.at_level(logging.INFO, logger="qflow"):
        assert main(["check", "b", "--limit", "5"]) == 0
    outcome = json.loads((build / "check.subset.json").read_text())["checks"]
    assert outcome["firmware"]["status"] == "equal" and "stale" not in outcome
    fw = json.loads((build / "firmware.subset.json").read_text())
    assert fw["agreement"]["host"]["equal"] == 5 and "rv32" not in fw["agreement"]
    assert "riscv64-unknown-elf-gcc not found on PATH (apt-get install gcc-riscv64" in \
        fw["skipped"]["rv32"]
    assert fw["instructions_per_inference"] is None
    assert "firmware: rv32 skipped: riscv64-unknown-elf-gcc not found" in caplog.text


def edited_ir(build: Path, folder: Path, doc_edit: object = None, array_edit: object = None
              ) -> Path:
    """A copy of the build's ir.json / ir.npz, edited as a user might by hand."""
    import json

    folder.mkdir()
    doc = json.loads((build / "ir.json").read_text())
    with np.load(build / "ir.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if doc_edit:
        doc_edit(doc)  # type: ignore[operator]
    if array_edit:
        array_edit(arrays)  # type: ignore[operator]
    (folder / "ir.json").write_text(json.dumps(doc))
    np.savez(folder / "ir.npz", **arrays, allow_pickle=True)  # type: ignore[arg-type]
    return folder


@pytest.mark.parametrize(("doc_edit", "array_edit", "message"), [
    (lambda d: d["layers"][1].update(cycles=1), None,
     r"ir.json: layer 1 \(dense1\): cycles is 1, but the IR's other fields give 128"),
    (lambda d: d["layers"][1].update(out_dtype="INT999"), None,
     r"layer 1 \(dense1\): out_dtype is 'INT999'"),
    (lambda d: d["layers"][0].update(weight_dtype="INT999"), None,
     r"layer 0 \(dense0\): malformed .*unknown datatype 'INT999'"),
    (lambda d: d["layers"][1].update(acc_dtype="INT64"), None, "acc_dtype is 'INT64'"),
    (lambda d: d.update(initiation_interval=1), None, "initiation_interval is 1"),
    (lambda d: d["input"].update(features=3), None, "input.features is 3"),
    (lambda d: d["layers"][0].update(unknown=1), None, "unknown is 1, .*not a field"),
    (lambda d: d["layers"][2].update(acc_min=-2**70), None, "within 64 bits"),
    (None, lambda a: a.update(extra=np.zeros(3)), r"ir.npz: arrays \['extra'\] are not named"),
    (None, lambda a: a.pop("dense1.weights"), "array 'dense1.weights' named by ir.json is missing"),
    (None, lambda a: a.update({"dense1.weights": np.array([{"x": 1}], dtype=object)}),
     "ir.npz: unreadable .*allow_pickle=False"),
    (None, lambda a: a.update({"output.acc_scale": a["output.acc_scale"] * np.nan}),
     "output scales and ops must be finite"),
    (None, lambda a: a.update({"output.op1": np.full_like(a["output.op1"], np.inf)}),
     "output scales and ops must be finite"),
])
def test_hand_edited_ir_is_refused_naming_file_and_layer(
        digits_build: Path, tmp_path: Path, doc_edit: object, array_edit: object,
        message: str) -> None:
    from flow.ir import IRError, load

    folder = edited_ir(digits_build, tmp_path / "ir", doc_edit, array_edit)
    with pytest.raises(IRError, match=message):
        load(folder)


def test_run_outputs_path_is_checked_before_running(build: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    np.save("x.npy", np.zeros((2, 1, 8, 8), np.float32))
    Path("afile").write_text("mine\n")
    cases = {
        "afile/y.npy": "afile is not a folder",
        "nowhere/y.npy": "nowhere does not exist",
        "b/ir.npz": "inside the build folder b",
        "b/y.npy": "inside the build folder b",
        "x.npy": "is the --inputs file",
        "y" * 300 + ".npy": "File name too long",
    }
    ir = (build / "ir.npz").read_bytes()
    for out, message in cases.items():
        refused(["run", "b", "--inputs", "x.npy", "--outputs", out], capsys, f"{out[:40]}",
                message)
    assert (build / "ir.npz").read_bytes() == ir and Path("afile").read_text() == "mine\n"
    assert np.load("x.npy").shape == (2, 1, 8, 8)
    Path("ünï cødé").mkdir()
    assert main(["run", "b", "--inputs", "x.npy", "--outputs", "ünï cødé/y.npy"]) == 0
    assert np.load("ünï cødé/y.npy").shape == (2, 10)


def test_bad_input_files_are_refused_by_name(build: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    x = np.zeros((2, 1, 8, 8), np.float32)
    np.savez("x.npz", x=x)
    Path("empty.npy").write_bytes(b"")
    np.save("object.npy", np.array([{"a": 1}] * 2, dtype=object), allow_pickle=True)
    np.save("record.npy", np.zeros((2, 1, 8, 8), dtype=[("a", "f4")]))
    np.save("huge.npy", np.full((2, 1, 8, 8), 1e300))  # finite in float64, inf in float32
    Path("folder").mkdir()
    cases = {
        "x.npz": "a .npz archive (arrays: x); expected one .npy array",
        "empty.npy": "an empty file (0 bytes)",
        "object.npy": "Object arrays cannot be loaded when allow_pickle=False",
        "record.npy": "expected real numbers",
        "huge.npy": "inputs must be finite in float32",
        "folder": "is a folder; expected a .npy file",
        "/dev/zero": "not a regular file",
    }
    for name, message in cases.items():
        refused(["run", "b", "--inputs", name, "--outputs", "y.npy"], capsys, name, message)
    assert not Path("y.npy").exists()
    np.save("bool.npy", np.ones((2, 1, 8, 8), bool))  # taken as the values 0 and 1
    assert main(["run", "b", "--inputs", "bool.npy", "--outputs", "y.npy"]) == 0


def test_compile_does_not_replace_a_trained_build(build: Path, tfc_onnx: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = (build / "checkpoint.pt").read_bytes()
    refused(["compile", str(tfc_onnx), "--out", "b"], capsys, "b: holds a trained model",
            "checkpoint.pt")
    assert (build / "checkpoint.pt").read_bytes() == checkpoint
    refused(["compile", str(build), "--out", "o"], capsys, f"{build}: no such file (a folder)")


def test_a_constant_without_a_tensor_names_the_node(digits_build: Path, tmp_path: Path) -> None:
    from onnx import helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        m.graph.node.insert(0, helper.make_node(  # type: ignore[attr-defined]
            "Constant", [], ["c"], name="odd", value_float=1.0))

    with pytest.raises(LoweringError, match=r"node odd \(Constant\): a Constant must hold one "
                                            "tensor"):
        lower(mutated(digits_build / "model.qonnx.onnx", tmp_path / "m.onnx", edit))


def test_a_tensor_made_twice_names_the_node(digits_build: Path, tmp_path: Path) -> None:
    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        nodes = m.graph.node  # type: ignore[attr-defined]
        nodes[2].output[0] = nodes[1].output[0]

    with pytest.raises(LoweringError, match="is already made by node"):
        lower(mutated(digits_build / "model.qonnx.onnx", tmp_path / "m.onnx", edit))


def test_verify_names_an_unknown_backend_before_running(
        digits_build: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from flow import verify

    monkeypatch.setattr(verify, "verify", lambda *a: pytest.fail("ran before refusing"))
    assert main(["verify", str(digits_build), "--backends", "hls,nonsense"]) == 2
    assert "--backends: unknown nonsense; choose from golden" in capsys.readouterr().err
