"""The report: golden tables, Pareto front against brute force, non-trivial PNGs, self-contained HTML."""

from __future__ import annotations

import base64
import io
import itertools
import re
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from stridelab.study.report import format_markdown_table, format_table, write_report
from stridelab.study.results import mark_pareto, mean_std, pareto_front
from tests.study.fixtures import fixed_results


def test_terminal_table_golden(golden) -> None:
    golden.check("study/table.txt", format_table(fixed_results()))


def test_markdown_table_golden(golden) -> None:
    golden.check("study/table.md", format_markdown_table(fixed_results()))


def test_table_numbers_are_mean_and_sample_std() -> None:
    table = format_table(fixed_results())
    # strided: accuracies 0.97, 0.98 -> 97.5 ± 0.7 (sample std 0.00707)
    assert re.search(r"^strided \*\s+97\.5 ± 0\.7\s", table, flags=re.M)
    assert mean_std([0.97, 0.98])["std"] == np.std([0.97, 0.98], ddof=1)


def test_pareto_marks_the_non_dominated_variants() -> None:
    results = fixed_results()
    flags = {v["name"]: v["pareto"] for v in results["variants"]}
    # blurpool is the most accurate, aggressive the cheapest; strided is cheaper than blurpool
    # and not less accurate than anything cheaper; no-downsampling is dominated by blurpool.
    assert flags == {"strided": True, "blurpool": True, "aggressive": True,
                     "no-downsampling": False, "space-to-depth": False}


def test_highlights_pick_the_winners() -> None:
    from stridelab.study.report import highlights

    lines = highlights(fixed_results())
    assert lines[0].startswith("most accurate: blurpool (98.0%)")
    assert lines[1].startswith("most shift-consistent: no-downsampling (97.2%)")
    assert lines[2].startswith("least compute: aggressive (2.50 M MACs")
    assert lines[3].startswith("lowest latency: aggressive (0.85 ms)")


def test_suspect_fields_are_flagged() -> None:
    from stridelab.study.measure import field_warning

    static = {"effective_stride": [4, 4]}
    assert field_warning(static, (1, 32, 32), (64, 8, 8)) is None
    assert "suspect" in str(field_warning({"effective_stride": [34, 34]}, (1, 32, 32),
                                          (64, 8, 8)))
    assert field_warning({"effective_stride": [34, 34]}, (1, 30, 30), (64, 8, 8)) is None
    table = format_table(fixed_results())
    assert "519 !" in table and "34 !" in table and "\n! space-to-depth:" in table


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 6)), min_size=1, max_size=7))
def test_pareto_front_matches_brute_force(points: list[tuple[int, int]]) -> None:
    flags = pareto_front([(float(c), float(a)) for c, a in points])
    for i, (cost, acc) in enumerate(points):
        better = [j for j, (c, a) in enumerate(points) if j != i and c <= cost and a >= acc
                  and (c, a) != (cost, acc)]
        assert flags[i] == (not better)
    # Nothing on the front dominates anything else on the front.
    front = [p for p, f in zip(points, flags, strict=True) if f]
    for a, b in itertools.permutations(front, 2):
        assert not (a[0] <= b[0] and a[1] >= b[1] and a != b)


def test_report_files_and_plots_are_real(tmp_path: Path) -> None:
    results = fixed_results()
    mark_pareto(results)
    paths = write_report(results, tmp_path)
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in pngs] == ["accuracy_vs_macs.png", "consistency_vs_stride.png",
                                      "feature_maps.png", "latency.png"]
    for png in pngs:
        assert png.stat().st_size > 10_000
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width >= 400 and image.height >= 300
            pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 10  # not blank
        assert len(np.unique(pixels)) > 20
    page = paths["html"].read_text(encoding="utf-8")
    assert "<img" in page and "src=\"http" not in page  # self-contained
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == 4
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in pngs}
    Image.open(io.BytesIO(base64.b64decode(embedded[0]))).verify()
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert format_markdown_table(results) in markdown
    assert "![Accuracy vs MACs" in markdown
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_report_title_and_file_modes(tmp_path: Path) -> None:
    from stridelab.study.report import render_markdown, report_title

    results = fixed_results()
    results["config"]["name"] = "study"  # the default run name
    assert report_title(results) == "Stride study"
    assert render_markdown(results, []).startswith("# Stride study\n")
    results["config"]["name"] = "cifar-long"
    assert report_title(results) == "Stride study: cifar-long"
    paths = write_report(results, tmp_path)
    for path in (paths["html"], paths["markdown"], *tmp_path.glob("*.png")):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_scene_report_opens_with_the_claims(tmp_path: Path) -> None:
    from stridelab.study.claims import evaluate_claims
    from stridelab.study.report import format_summary
    from tests.study.fixtures import fixed_scene_results

    results = fixed_scene_results()
    results["claims"] = evaluate_claims(results)
    paths = write_report(results, tmp_path)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    order = [markdown.index(h) for h in ("## The claims, measured", "## Classification",
                                         "## Segmentation", "## Detection",
                                         "## Does detail drop")]
    assert order == sorted(order)
    claims = markdown[order[0]:order[1]]
    assert "| A larger stride loses spatial detail (boundaries, small objects) |" in claims
    assert "| supported |" in claims and "depends (AP fpn vs os8-dilated: no difference)" in claims
    # numbers with their spread: os8 boundary F1 0.61 ± 0.014
    assert ("segment boundary_F1: os32-strided-bilinear 31.0 ± 1.4 % vs os8-dilated-bilinear 61.0 ± 1.4 %"
            in claims)
    detail = markdown[order[4]:]
    assert ("segment boundary F1 drops at every step as the output stride grows: stride 8 "
            "(os8-dilated-bilinear): 61.0 ± 1.4, stride 16 (os16-dilated-bilinear): 51.0 ± 1.4, "
            "stride 32 (os32-strided-bilinear): 31.0 ± 1.4") in detail
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "classify_vs_macs.png", "segment_vs_macs.png", "detect_vs_macs.png",
        "detail_vs_stride.png", "consistency_vs_stride.png", "latency.png"}
    page = paths["html"].read_text(encoding="utf-8")
    assert page.index("The claims, measured") < page.index("Segmentation (")
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 6
    text = format_summary(results)
    assert "os32-skip" in text and "claims (rule in the report):" in text
