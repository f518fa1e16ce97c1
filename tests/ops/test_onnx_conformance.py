"""ONNX backend node tests for Conv, ConvTranspose, MaxPool, AveragePool and the global pools.

The cases come from onnx's own test generator (``onnx.backend.test.case.node``): importing an
operator's module runs its ``export*`` methods, which register each case through
``onnx.backend.test.case.node.expect`` (what ``collect_testcases`` does for every operator;
importing only these six modules takes a second instead of ~40). Every case runs through
``stridelab.ops`` (values, with the suite's own rtol / atol) and ``stridelab.arith`` (output
shape). KNOWN lists cases whose expected value is the suite's error; it is empty, and a case may
only be added if onnxruntime and onnx's reference implementation both agree with stridelab.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from tests.ops._onnx_nodes import OP_TYPES, expected_shape, run_node

MODULES = ("conv", "convtranspose", "maxpool", "averagepool", "globalaveragepool",
           "globalmaxpool")
KNOWN: dict[str, str] = {}  # case name -> why the suite's expected value is wrong


def _collect() -> list[Any]:
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    for module in MODULES:
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    registered = list(node_cases._NodeTestCases)
    if not any(c.model.graph.node[0].op_type == "Conv" for c in registered):
        registered = [c for op in OP_TYPES for c in node_cases.collect_testcases(op)]
    cases = {c.name: c for c in registered
             if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in OP_TYPES}
    return [cases[name] for name in sorted(cases)]


def test_onnx_node_suite() -> None:
    """Every case passes in stridelab.ops (values) and stridelab.arith (shapes): 0 failures.

    One test, not one per case: generating the cases runs onnx's slow reference pooling (~10 s of
    CPU), which a parametrized test would repeat in every pytest-xdist worker at collection.
    """
    cases = _collect()
    assert {case.model.graph.node[0].op_type for case in cases} == set(OP_TYPES)
    assert len(cases) >= 60  # 61 with onnx 1.23
    failures: list[str] = []
    for case in cases:
        if case.name in KNOWN:
            continue
        try:
            _check(case)
        except Exception as err:  # noqa: BLE001 - collect every failure, report them together
            failures.append(f"{case.name}: {type(err).__name__}: {str(err)[:300]}")
    assert not failures, f"{len(failures)} of {len(cases)} ONNX node tests fail:\n" + "\n".join(
        failures)
    assert not set(KNOWN) - {case.name for case in cases}, "KNOWN names a case that is gone"


def _check(case: Any) -> None:
    node = case.model.graph.node[0]
    ((inputs, outputs),) = case.data_sets
    inputs = [np.asarray(v) for v in inputs]
    expected = [np.asarray(v) for v in outputs]
    assert expected_shape(node, inputs) == expected[0].shape, "stridelab.arith shape"
    got = run_node(node, inputs)
    assert len(got) == len(expected), "number of outputs"
    for g, e in zip(got, expected):
        assert g.shape == e.shape, f"shape {g.shape} != {e.shape}"
        if np.issubdtype(e.dtype, np.integer):
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=case.rtol, atol=case.atol)
