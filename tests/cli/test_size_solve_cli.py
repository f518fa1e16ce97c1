"""`stridelab size` / `stridelab solve`: golden tables and JSON, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stridelab.cli import main

GOLDEN_CASES = {
    "size_single.txt": "size --input 224 --kernel 7 --stride 2 --padding 3",
    "size_chain.txt": "size --input 224 --layers c7s2p3,m3s2p1,c3s2p1,c1s2",
    "size_explain.txt": "size --input 6 --kernel 3 --stride 2 --explain",
    "size_same_2d.txt": "size --input 225x224 --kernel 3 --stride 2 --padding same --explain",
    "size_pool_ceil.txt": "size --input 5 --kernel 2 --stride 2 --padding 1 --pool --ceil --explain",
    "size_pool_onnx.txt": "size --input 5 --kernel 3 --stride 2 --padding 2 --pool --ceil "
                          "--convention onnx --explain",
    "size_transposed.txt": "size --input 56 --kernel 4 --stride 2 --padding 1 --transposed",
    "size_chain.json": "size --input 224 --layers c7s2p3,m3s2p1 --json",
    "solve.txt": "solve --input 224 --output 112 --limit 8",
    "solve_kernel3.json": "solve --input 225 --output 113 --kernel 3",
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_output(name: str, golden, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(GOLDEN_CASES[name].split()) == 0
    golden.check(f"cli/{name}", capsys.readouterr().out)


def test_chain_json_values(capsys) -> None:  # type: ignore[no-untyped-def]
    main("size --input 224 --layers c7s2p3,m3s2p1 --json".split())
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [lay["output"] for lay in layers] == [[112], [56]]
    assert layers[-1]["receptive_field"] == [11] and layers[-1]["effective_stride"] == [4]
    assert layers[-1]["effective_padding"] == [5]


BAD_ARGS = [
    ("size --input 22x --kernel 3", "--input"),
    ("size --kernel 3", "--input"),
    ("size --input 4 --kernel 7", "kernel is larger"),
    ("size --input 8 --kernel 3 --padding full", "padding"),
    ("size --input 8 --kernel 3 --stride 0", "stride"),
    ("size --input 8 --kernel 3 --ceil", "--ceil"),
    ("size --input 8 --layers c3,q2", "layer spec"),
    ("size --input 5 --kernel 3 --padding 2 --pool", "convention='onnx'"),
    ("size --input 5 --kernel 3 --pool --convention tf", "--convention"),
    ("size --input 8 --kernel 3 --transposed --output-padding 5", "output_padding"),
    ("solve --input 8", "--output"),
    ("solve --input 8 --output 4 --kernel a", "--kernel"),
    ("bogus", "invalid choice"),
]


@pytest.mark.parametrize("argv,needle", BAD_ARGS)
def test_bad_arguments_one_line_exit_2(argv: str, needle: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(argv.split()) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], captured.err


def test_console_script_exit_code_and_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "stridelab", "size", "--input", "x"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_arith_imports_only_the_standard_library() -> None:
    # Compare against what a bare interpreter already has loaded (site hooks such as
    # _distutils_hack), so only what importing stridelab.arith adds is judged.
    code = ("import sys; before = set(sys.modules); import stridelab.arith; "
            "bad = [m for m in set(sys.modules) - before if m.split('.')[0] not in "
            "sys.stdlib_module_names and m.split('.')[0] != 'stridelab']; print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_before_after_pair_applies_to_every_axis(capsys) -> None:  # type: ignore[no-untyped-def]
    """`--padding 0,1` is before 0 / after 1 on both axes of a 2-D input (not 0 on H, 1 on W)."""
    assert main("size --input 8x8 --kernel 3 --stride 2 --padding 0,1 --json".split()) == 0
    layer = json.loads(capsys.readouterr().out)["layers"][0]
    assert layer["padding"] == [[0, 1], [0, 1]] and layer["output"] == [4, 4]
    assert main("size --input 8x8 --kernel 3 --stride 2 --padding 0x1 --json".split()) == 0
    layer = json.loads(capsys.readouterr().out)["layers"][0]
    assert layer["padding"] == [[0, 0], [1, 1]] and layer["output"] == [3, 4]
