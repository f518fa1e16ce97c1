"""The explore app's JSON API, through Starlette's TestClient (no browser, no server).

Oracles: the shapes torch.nn.functional really produces (sizes, exported snippets executed),
torch autograd (which input pixels reach an output: the grid's dropped / never-read cells and a
model unit's receptive-field box), onnxruntime (the exported ONNX attributes), and published
values (ResNet-18's 11,689,512 parameters, the README chain's fields).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from stridelab.web import create_app
from stridelab.web.arithmetic import layer_answer
from stridelab.web.params import ParamError
from tests._budget import budget

STUDY = Path(__file__).parent / "data" / "study_demo"
STATIC = Path(__file__).parents[2] / "src" / "stridelab" / "web" / "static"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(runs=STUDY), raise_server_exceptions=False)


def run_snippet(source: str) -> tuple[int, ...]:
    """Execute an exported snippet; its last printed line is the spatial output size."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<exported>", "exec"), {})
    value = ast.literal_eval(out.getvalue().strip().splitlines()[-1].split("#")[0])
    return (value,) if isinstance(value, int) else tuple(value)


# ---- one layer ---------------------------------------------------------------------------------

def test_the_classic_floor_case(client: TestClient) -> None:
    answer = client.get("/api/layer", params={"input-size": "6", "kernel": "3", "stride": "2"}).json()
    assert answer["output_size"] == [2]
    assert answer["dropped"] == [1]
    assert "floor((6 + 2*0 - 3) / 2) + 1 = floor(3 / 2) + 1 = 1 + 1 = 2" in answer["formula"]
    assert answer["grid"]["dropped"] == [[0, 5]]
    assert len(answer["grid"]["frames"]) == 2
    assert F.conv1d(torch.zeros(1, 1, 6), torch.zeros(1, 1, 3), stride=2).shape[-1] == 2


def _torch_layer(x: torch.Tensor, mode: str, k: tuple[int, ...], s: tuple[int, ...],
                 d: tuple[int, ...], pads: list[list[int]], ceil: bool,
                 op: tuple[int, ...]) -> torch.Tensor:
    """The layer in torch with ones as weights (every tap reads): the oracle for sizes and reads."""
    nd = len(k)
    flat = [v for pair in reversed(pads) for v in pair]
    if mode == "conv":
        conv = F.conv1d if nd == 1 else F.conv2d
        return conv(F.pad(x, flat), torch.ones(1, 1, *k, dtype=x.dtype), stride=s, dilation=d)
    if mode == "pool":  # average pooling reads every tap; symmetric padding only (see caller)
        pool = F.avg_pool1d if nd == 1 else F.avg_pool2d
        return pool(x, k, s, [p[0] for p in pads], ceil_mode=ceil)
    conv_t = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
    y = conv_t(x, torch.ones(1, 1, *k, dtype=x.dtype), stride=s, output_padding=op, dilation=d)
    index = (slice(None), slice(None)) + tuple(slice(b, y.shape[2 + a] - e)
                                               for a, (b, e) in enumerate(pads))
    return y[index]


layer_cases = st.fixed_dictionaries({
    "ndim": st.sampled_from([1, 2]), "size": st.lists(st.integers(1, 12), min_size=2, max_size=2),
    "kernel": st.integers(1, 5), "stride": st.integers(1, 4), "dilation": st.sampled_from([1, 1, 2, 3]),
    "padding": st.sampled_from(["0", "1", "2", "0,1", "2,0", "1,2", "valid", "same", "same_lower"]),
    "mode": st.sampled_from(["conv", "conv", "pool", "transposed"]), "ceil": st.booleans(),
    "op": st.integers(0, 2),
})


@settings(max_examples=budget(40))
@given(case=layer_cases)
def test_sizes_reads_and_exports_match_torch(case: dict) -> None:
    nd, mode = case["ndim"], case["mode"]
    size = case["size"][:nd]
    query = {"input-size": "x".join(map(str, size)), "kernel": str(case["kernel"]),
             "stride": str(case["stride"]), "dilation": str(case["dilation"]),
             "padding": case["padding"], "mode": mode}
    if mode == "pool":
        assume(case["dilation"] == 1 and "," not in case["padding"])  # avg-pool oracle
        query["ceil"] = "1" if case["ceil"] else "0"
    if mode == "transposed":
        assume(case["padding"][0].isdigit())
        query["output-padding"] = str(case["op"])
    try:
        answer = layer_answer(query)
    except ParamError as err:
        assert err.param in ("kernel", "padding", "output-padding", "input-size", "stride")
        return
    k, s, d = ((v,) * nd for v in (case["kernel"], case["stride"], case["dilation"]))
    op = (int(query.get("output-padding", 0)),) * nd
    x = torch.rand(1, 1, *size, dtype=torch.float64, requires_grad=True)
    y = _torch_layer(x, mode, k, s, d, answer["padding"], case["ceil"] and mode == "pool", op)
    assert list(y.shape[2:]) == answer["output_size"]
    # exported code gives the shown size (stridelab.nn and plain torch)
    assert run_snippet(answer["code"]["pytorch"]) == tuple(answer["output_size"])
    if mode != "transposed":
        assert run_snippet(answer["code"]["stridelab"]) == tuple(answer["output_size"])
    if mode == "transposed" or answer["grid"] is None:
        return
    # the grid's dropped + never-read cells are exactly the input pixels no output depends on
    y.sum().backward()
    grad = x.grad[0, 0].reshape(1, -1) if nd == 1 else x.grad[0, 0]
    untouched = {(r, c) for r, c in zip(*np.nonzero(grad.numpy() == 0))}
    shown = {tuple(c) for c in answer["grid"]["dropped"] + answer["grid"]["unread"]}
    assert shown == untouched
    if mode != "conv":
        return
    # dropped = real pixels past the last padded position any window reads (autograd on the
    # explicitly padded input)
    flat = [v for pair in reversed(answer["padding"]) for v in pair]
    padded = F.pad(torch.rand(1, 1, *size, dtype=torch.float64), flat).requires_grad_(True)
    conv = F.conv1d if nd == 1 else F.conv2d
    conv(padded, torch.ones(1, 1, *k, dtype=torch.float64), stride=s, dilation=d).sum().backward()
    for axis, n in enumerate(size):
        other = tuple(a for a in range(2, 2 + nd) if a != 2 + axis)
        reached = padded.grad.abs().sum(dim=(0, 1, *other)).nonzero().max().item()
        before = answer["padding"][axis][0]
        assert answer["dropped"][axis] == sum(1 for i in range(n) if i + before > reached)


def test_dropped_count_is_the_unread_end(client: TestClient) -> None:
    """Brute force on rows: the last pixels no torch output depends on (1x1 stride-2 on 28)."""
    answer = client.get("/api/layer", params={"input-size": "28", "kernel": "1", "stride": "2"}).json()
    x = torch.rand(1, 1, 28, requires_grad=True)
    F.conv1d(x, torch.ones(1, 1, 1), stride=2).sum().backward()
    reached = torch.nonzero(x.grad[0, 0]).max().item()
    assert answer["dropped"] == [28 - 1 - reached] == [1]


@pytest.mark.parametrize("query", [
    {"input-size": "7x6", "kernel": "3", "stride": "2", "padding": "0,1x1,0"},
    {"input-size": "9", "kernel": "3", "stride": "2", "padding": "same", "mode": "pool", "ceil": "1"},
    {"input-size": "8", "kernel": "2", "stride": "2", "padding": "0,1", "mode": "pool", "ceil": "1"},
    {"input-size": "5x4", "kernel": "4", "stride": "2", "padding": "1", "mode": "transposed",
     "output-padding": "1"},
    {"input-size": "6x7", "kernel": "3", "stride": "1", "dilation": "2", "padding": "same_lower"},
])
def test_onnx_attributes_run_in_onnxruntime(client: TestClient, query: dict) -> None:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    answer = client.get("/api/layer", params=query).json()
    node = answer["code"]["onnx_node"]
    kernel = node["attributes"]["kernel_shape"]
    inputs = ["x"] if node["op_type"] == "MaxPool" else ["x", "w"]
    weights = [] if len(inputs) == 1 else [helper.make_tensor(
        "w", TensorProto.FLOAT, [1, 1, *kernel], np.ones(int(np.prod(kernel)), np.float32))]
    graph = helper.make_graph(
        [helper.make_node(node["op_type"], inputs, ["y"], **node["attributes"])], "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, *answer["input_size"]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": np.ones((1, 1, *answer["input_size"]), np.float32)})[0]
    assert list(y.shape[2:]) == answer["output_size"]
    assert run_snippet(answer["code"]["pytorch"]) == tuple(answer["output_size"])


def test_keras_uses_same_only_when_tensorflow_pads_the_same_way(client: TestClient) -> None:
    same = client.get("/api/layer", params={"input-size": "224", "kernel": "3", "stride": "2",
                                            "padding": "same"}).json()["code"]["keras"]
    torch_style = client.get("/api/layer", params={"input-size": "224", "kernel": "3", "stride": "2",
                                                   "padding": "1"}).json()["code"]["keras"]
    assert "padding='same'" in same and "ZeroPadding1D" not in same
    # PyTorch pads (1, 1); TF 'same' would pad (0, 1) on 224: Keras needs the explicit pad
    assert "ZeroPadding1D(padding=(1, 1))" in torch_style and "padding='valid'" in torch_style


# ---- chains ------------------------------------------------------------------------------------

def test_chain_matches_torch_and_the_distill_recurrence(client: TestClient) -> None:
    answer = client.get("/api/chain", params={"chain-input": "224",
                                              "layers": "c7s2p3,m3s2p1,c3s2p1,c1s2"}).json()
    rows = answer["layers"]
    x = torch.zeros(1, 1, 224, 224)
    x = F.conv2d(x, torch.zeros(1, 1, 7, 7), stride=2, padding=3)
    sizes = [x.shape[-1]]
    x = F.max_pool2d(x, 3, 2, 1)
    sizes.append(x.shape[-1])
    x = F.conv2d(x, torch.zeros(1, 1, 3, 3), stride=2, padding=1)
    sizes.append(x.shape[-1])
    x = F.conv2d(x, torch.zeros(1, 1, 1, 1), stride=2)
    sizes.append(x.shape[-1])
    assert [r["output"] for r in rows] == [[s] for s in sizes]
    # r += (k - 1) * S, S *= s: 7, 7 + 2*2, 11 + 2*4, 19 + 0
    assert [r["receptive_field"] for r in rows] == [[7], [11], [19], [19]]
    assert [r["effective_stride"] for r in rows] == [[2], [4], [8], [16]]
    assert [r["dropped"] for r in rows] == [[0], [0], [0], [1]]
    assert rows[1]["controls"] == {"input-size": "112", "kernel": "3", "stride": "2",
                                   "dilation": "1", "padding": "1", "mode": "pool", "ceil": "0",
                                   "output-padding": "0"}


# ---- bad input: 422 naming the control, never a trace ----------------------------------------

@pytest.mark.parametrize("path, params, param", [
    ("/api/layer", {"input-size": "abc"}, "input-size"),
    ("/api/layer", {"input-size": "6x6x6"}, "input-size"),
    ("/api/layer", {"input-size": "6", "kernel": "0"}, "kernel"),
    ("/api/layer", {"input-size": "6", "kernel": "3x3x3"}, "kernel"),
    ("/api/layer", {"input-size": "6", "stride": "-1"}, "stride"),
    ("/api/layer", {"input-size": "6", "dilation": "two"}, "dilation"),
    ("/api/layer", {"input-size": "6", "padding": "lots"}, "padding"),
    ("/api/layer", {"input-size": "6x6", "padding": "1x1x1"}, "padding"),
    ("/api/layer", {"input-size": "6", "mode": "deconv"}, "mode"),
    ("/api/layer", {"input-size": "6", "output-padding": "1"}, "output-padding"),
    ("/api/layer", {"input-size": "6", "ceil": "1"}, "ceil"),
    ("/api/layer", {"input-size": "6", "ceil": "maybe", "mode": "pool"}, "ceil"),
    ("/api/layer", {"input-size": "2", "kernel": "5"}, "kernel"),
    ("/api/layer", {"input-size": "6", "kernel": "3", "padding": "2", "mode": "pool"}, "padding"),
    ("/api/layer", {"input-size": "6", "stride": "2", "mode": "transposed",
                    "output-padding": "2"}, "output-padding"),
    ("/api/layer", {"input-size": "6", "mode": "transposed", "padding": "same"}, "padding"),
    ("/api/layer", {"input-size": "999999"}, "input-size"),
    ("/api/chain", {"layers": "c7s2p3,zz"}, "layers"),
    ("/api/chain", {"layers": ""}, "layers"),
    ("/api/chain", {"layers": "c3", "chain-input": "0"}, "chain-input"),
    ("/api/chain", {"layers": "c9", "chain-input": "4"}, "layers"),
    ("/api/model", {"model-spec": "no_such_net"}, "model-spec"),
    ("/api/model", {"model-spec": "evil.py:Model"}, "model-spec"),
    ("/api/model", {"model-spec": "os.path:join"}, "model-spec"),
    ("/api/model", {"model-spec": "resnet18", "input": "3x0x0"}, "input"),
    ("/api/model", {"model-spec": "resnet18", "input": "big"}, "input"),
    ("/api/unit", {"model-spec": "resnet18", "input": "3x64x64", "layer": "nope", "x": "1",
                   "y": "1"}, "layer"),
    ("/api/unit", {"model-spec": "resnet18", "input": "3x64x64", "layer": "layer2", "x": "64",
                   "y": "1"}, "x"),
    ("/api/unit", {"model-spec": "resnet18", "input": "3x64x64", "layer": "layer2.1.relu#2",
                   "x": "nan", "y": "1"}, "x"),
    ("/api/study/nope", {}, "run"),
    ("/runs/study_demo/.hidden.json", {}, "file"),
    ("/runs/study_demo/missing.png", {}, "file"),
    ("/runs/study_demo/config.py", {}, "file"),
])
def test_bad_values_answer_422_naming_the_control(client: TestClient, path: str, params: dict,
                                                  param: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["param"] == param
    assert body["error"] and "Traceback" not in body["error"] and "File \"" not in body["error"]


def test_unknown_paths_are_404_json(client: TestClient) -> None:
    response = client.get("/api/nothing")
    assert response.status_code == 404 and response.json()["error"]
    for sneaky in ("/runs/study_demo/..%2F..%2Fconftest.py", "/runs/..%2Fweb/test_api.py",
                   "/static/..%2Fapp.py"):
        assert client.get(sneaky).status_code == 404, sneaky


# ---- model page --------------------------------------------------------------------------------

def test_model_answer_is_the_inspector_report(client: TestClient) -> None:
    import stridelab
    from stridelab.inspect.render import rows
    from stridelab.nn.presets import presets

    answer = client.get("/api/model", params={"model-spec": "resnet18", "input": "3x64x64"}).json()
    assert answer["totals"]["params"] == 11_689_512  # torchvision's resnet18
    report = stridelab.inspect(presets["resnet18"](), (3, 64, 64))
    assert [r["name"] for r in answer["table"]["rows"]["1"]] == [r.name for r in rows(report, 1)]
    assert [r["macs"] for r in answer["table"]["rows"]["all"]] == [r.macs for r in report.layers]
    assert answer["table"]["max_depth"] == 4
    assert [s["label"] for s in answer["pyramid"]][:2] == ["conv1..relu", "maxpool..layer1"]
    assert {d["code"] for d in answer["diagnostics"]} >= {"dropped-pixels", "aliasing"}
    assert answer["unit_layers"][0]["name"] == "conv1"


def test_clicked_unit_field_matches_autograd(client: TestClient) -> None:
    """The box of the unit nearest the click is where its gradient reaches the input."""
    from stridelab.nn.presets import presets

    params = {"model-spec": "resnet18", "input": "3x64x64", "layer": "layer2.1.relu#2"}
    unit = client.get("/api/unit", params={**params, "x": "40.2", "y": "9.7"}).json()
    row, col = unit["unit"]
    # nearest centre to the click, on each axis (the centres come back with the neighbours)
    centres = {tuple(n["unit"]): n["center"] for n in unit["neighbours"]}
    assert all(abs(centres[(row, col)][0] - 9.7) <= abs(c[0] - 9.7) for c in centres.values())
    assert all(abs(centres[(row, col)][1] - 40.2) <= abs(c[1] - 40.2) for c in centres.values())
    torch.manual_seed(0)
    model = presets["resnet18"]().double().eval()
    captured = {}
    model.layer2.register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64, requires_grad=True)
    model(x)
    captured["out"][0, :, row, col].sum().backward()
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
    box = {k: int(v) for k, v in unit["box"].items()}
    assert (rows.min().item(), rows.max().item()) == (box["top"], box["bottom"])
    assert (cols.min().item(), cols.max().item()) == (box["left"], box["right"])
    assert unit["start"][0] <= box["top"] and unit["end"][1] >= box["right"]


def test_page_accepts_only_builtin_and_registry_names_but_the_command_line_may_name_code(
        tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text("import torch\n"
                      "def Tiny():\n    return torch.nn.Conv2d(3, 4, 3, stride=2)\n")
    spec = f"{source}:Tiny"
    trusting = TestClient(create_app(model=spec), raise_server_exceptions=False)
    answer = trusting.get("/api/model", params={"model-spec": spec, "input": "3x9x9"}).json()
    assert answer["table"]["rows"]["all"][0]["output"] == "1x4x4x4"
    assert trusting.get("/api/models").json()["names"][0] == spec
    other = f"{source}:Other"
    refused = trusting.get("/api/model", params={"model-spec": other, "input": "3x9x9"})
    assert refused.status_code == 422 and refused.json()["param"] == "model-spec"


def test_effective_field_heatmap_lies_in_the_units_field(client: TestClient) -> None:
    import stridelab

    params = {"model-spec": "resnet18", "input": "3x64x64", "layer": "layer2", "row": "1",
              "col": "2"}
    answer = client.get("/api/erf", params=params).json()
    assert answer["available"] == hasattr(stridelab, "effective_field")
    if not answer["available"]:
        return
    heat = np.array(answer["map"])
    assert heat.shape == (64, 64) and heat.sum() == pytest.approx(1.0)
    unit = client.get("/api/unit", params={**params, "x": "20", "y": "12"}).json()
    assert unit["unit"] == [1, 2]
    top, left, bottom, right = (int(unit["box"][k]) for k in ("top", "left", "bottom", "right"))
    inside = heat[top:bottom + 1, left:right + 1].sum()
    assert inside == pytest.approx(1.0)  # no gradient outside the theoretical field
    bad = client.get("/api/erf", params={**params, "row": "99"})
    assert bad.status_code == 422 and bad.json()["param"] == "row"


# ---- assets, study, safety --------------------------------------------------------------------

def test_pages_and_assets_ship_in_the_package(client: TestClient) -> None:
    for path in ("/", "/model", "/study", "/static/style.css", "/static/common.js",
                 "/static/arith.js", "/static/model.js", "/static/study.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
    photo = client.get("/api/photo.jpg")
    assert photo.headers["content-type"] == "image/jpeg" and photo.content[:2] == b"\xff\xd8"


def test_no_cdn_and_no_arithmetic_in_javascript() -> None:
    """Every number comes from the API: the scripts hold no floor / ceil / modulo formula and
    the pages load nothing from another origin."""
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name
        assert "@import" not in text and "url(http" not in text, path.name
        if path.suffix == ".js":
            code = re.sub(r"^\s*//.*$", "", text, flags=re.M)  # comments
            code = re.sub(r'"[^"\n]*"|\'[^\'\n]*\'', '""', code)  # string literals
            for pattern in (r"Math\.(floor|ceil|trunc|round)", r"[^=!<>]=?\s%\s", r"\|\s*0\b",
                            r">>", r"\b(stride|kernel|dilation|padding)\w*\s*[-+*/]"):
                assert not re.search(pattern, code), (path.name, pattern)


def test_study_endpoints(client: TestClient) -> None:
    assert client.get("/api/study").json()["runs"] == ["study_demo"]
    run = client.get("/api/study/study_demo").json()
    assert run["columns"][0] == "variant" and [r[0] for r in run["rows"]] == [
        "strided", "blurpool", "aggressive *"]
    assert run["plots"] == [{"file": "latency.png", "title": "Latency per variant (batch 1)"}]
    png = client.get("/runs/study_demo/latency.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    empty = TestClient(create_app()).get("/api/study").json()
    assert empty == {"root": None, "runs": []}


def test_trusted_hosts_refuse_rebinding() -> None:
    guarded = TestClient(create_app(allowed_hosts=["127.0.0.1", "localhost"]),
                         base_url="http://evil.example")
    assert guarded.get("/api/models").status_code == 400
    local = TestClient(create_app(allowed_hosts=["127.0.0.1", "localhost"]),
                       base_url="http://127.0.0.1:8000")
    assert local.get("/api/models").status_code == 200
