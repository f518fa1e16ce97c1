"""Cache-sized pieces, threads, reused buffers and the weight cache, against PyTorch.

Small piece budgets force many pieces (bands of a few output rows) on small inputs, so every
boundary case (a band of one row, a last short band, pieces of several images) is compared with
torch.nn.functional.conv2d / autograd at float64 1e-10. Thread counts must not change a single
bit of any result.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _chunks, _gemm, _parallel, _pointwise, _weights, _workspace
from stridelab.ops._geometry import conv_geometry
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase, conv_cases


def _case(n: int, cin: int, cout: int, size: tuple[int, int], k: int, s: int, p: int,
          groups: int = 1) -> ConvCase:
    return ConvCase(n, cin, cout, groups, size, (k, k), (s, s), (1, 1), p, ((p, p), (p, p)))


def _arrays(case: ConvCase, seed: int, dtype: type = np.float64
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size)).astype(dtype)
    w = rng.standard_normal((case.out_channels, case.in_channels // case.groups, *case.kernel))
    b = rng.standard_normal(case.out_channels)
    return x, w.astype(dtype), b.astype(dtype)


def _all(case: ConvCase, x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray,
         threads: int | None = None) -> tuple[np.ndarray, ...]:
    args = (case.stride, case.padding, case.dilation, case.groups)
    y = ops.conv(x, w, b, *args, threads=threads)
    gx, gw, gb = ops.conv_backward(g, x, w, *args, threads=threads)
    assert gb is not None
    return y, gx, gw, gb


def _against_torch(case: ConvCase, seed: int, dtype: type = np.float64, rtol: float = 1e-10,
                   threads: int | None = None) -> tuple[np.ndarray, ...]:
    x, w, b = _arrays(case, seed, dtype)
    y = ops.conv(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    mine = _all(case, x, w, b, g, threads)
    for name, a, e in zip(("output", "grad_x", "grad_weight", "grad_bias"), mine,
                          ref.conv(case, x, w, b, g)):
        ref.assert_close(a, e, rtol, f"{name} {case}")
    return mine


@pytest.fixture
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Patch matrices of at most 256 bytes: one output row (or less) per piece."""
    monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: 256)
    yield


# -- the split itself -------------------------------------------------------------------------

@settings(max_examples=budget(30), deadline=None)
@given(case=conv_cases(ndims=(1, 2, 3)), limit=st.integers(1, 4096))
def test_pieces_cover_every_output_row_once(case: ConvCase, limit: int) -> None:
    """Brute force: the pieces' rows partition ``range(N * positions)`` in order, and each piece's
    (images, band) names exactly its rows."""
    geom = conv_geometry((case.batch, case.in_channels, *case.size),
                         (case.out_channels, case.in_channels // case.groups, *case.kernel),
                         case.stride, case.padding, case.dilation, case.groups)
    units = _chunks.plan(geom, 8, budget=limit)
    inner = geom.out_positions // geom.out_size[0]
    seen: list[int] = []
    for piece in (p for unit in units for p in unit):
        rows = [n * geom.out_positions + r * inner + i
                for n in range(piece.images.start, piece.images.stop)
                for r in range(piece.rows.start, piece.rows.stop) for i in range(inner)]
        assert rows == list(range(piece.start, piece.start + piece.count))
        seen.extend(rows)
    assert seen == list(range(geom.batch * geom.out_positions))
    images = [set(range(u[0].images.start, u[-1].images.stop)) for u in units]
    assert all(not a & b for i, a in enumerate(images) for b in images[i + 1:])
    stripes = _chunks.stripes(units)
    assert len(stripes) <= _chunks.MAX_STRIPES
    assert [p for s in stripes for p in s] == [p for u in units for p in u]


# -- many pieces against torch ----------------------------------------------------------------

@settings(max_examples=budget(30), deadline=None)
@given(case=conv_cases(ndims=(1, 2, 3)), seed=st.integers(0, 2**31), threads=st.integers(1, 3))
def test_many_pieces_match_torch(case: ConvCase, seed: int, threads: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_chunks, "column_bytes", lambda backward=False: 256)
        _against_torch(case, seed, threads=threads)


@pytest.mark.parametrize("case", [
    _case(3, 3, 8, (23, 19), 7, 2, 3),  # stem-like, channels-first gradient buffer
    _case(2, 16, 8, (13, 11), 3, 2, 1),  # channels-last gradient buffer
    _case(2, 6, 6, (9, 9), 3, 3, 1, groups=3),  # grouped
    _case(5, 4, 4, (5, 3), 3, 1, 1),  # small images: pieces of several images
])
def test_chunk_boundaries_match_torch_float64_and_float32(tiny_pieces: None,
                                                          case: ConvCase) -> None:
    _against_torch(case, 7)
    _against_torch(case, 8, np.float32, 2e-5)


# -- threads ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    _case(4, 3, 16, (37, 29), 7, 2, 3),
    _case(3, 32, 24, (21, 21), 3, 2, 1),
    _case(2, 6, 9, (15, 15), 3, 1, 1, groups=3),
    _case(3, 40, 48, (17, 17), 1, 2, 0),  # strided 1x1: one GEMM
])
def test_thread_count_changes_no_bit(case: ConvCase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: 4096)
    x, w, b = _arrays(case, 3, np.float32)
    g = np.random.default_rng(4).standard_normal(
        ops.conv(x, w, b, case.stride, case.padding, 1, case.groups).shape).astype(np.float32)
    one = _all(case, x, w, b, g, threads=1)
    for threads in (2, 3, 5):
        for a, e in zip(_all(case, x, w, b, g, threads=threads), one):
            assert np.array_equal(a, e), f"threads={threads} differs from threads=1 for {case}"
    monkeypatch.setenv(_parallel.ENV_VAR, "3")
    for a, e in zip(_all(case, x, w, b, g), one):
        assert np.array_equal(a, e)


def test_thread_count_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_parallel.ENV_VAR, raising=False)
    blas = _parallel.BLAS.threads()
    assert _parallel.current_threads() == max(1, min(blas or _parallel.cores(), _parallel.cores()))
    monkeypatch.setenv(_parallel.ENV_VAR, "3")
    assert _parallel.current_threads() == 3
    with _parallel.thread_scope(5) as count:
        assert count == 5 and _parallel.current_threads() == 5
    assert _parallel.current_threads() == 3


def test_threads_argument_and_env_var_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    with pytest.raises(TypeError, match="threads"):
        ops.conv(x, w, threads="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="threads"):
        ops.conv(x, w, threads=True)
    with pytest.raises(ValueError, match="threads"):
        ops.conv_backward(np.ones((1, 3, 3, 3)), x, w, threads=0)
    monkeypatch.setenv(_parallel.ENV_VAR, "many")
    with pytest.raises(ValueError, match=_parallel.ENV_VAR):
        ops.conv(x, w)
    monkeypatch.setenv(_parallel.ENV_VAR, "0")
    with pytest.raises(ValueError, match=_parallel.ENV_VAR):
        ops.conv(x, w)


def test_blas_threads_are_restored_and_one_thread_holds_blas_to_one() -> None:
    libs = _parallel.BLAS.libs()
    if not libs:
        pytest.skip("threadpoolctl finds no BLAS")
    before = [lib.num_threads for lib in libs]
    seen: list[int] = []
    real = np.matmul

    def spying(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(max(lib.num_threads for lib in libs))
        return real(*args, **kwargs)

    x, w = np.ones((2, 4, 30, 30)), np.ones((8, 4, 3, 3))
    try:
        np.matmul = spying  # type: ignore[assignment]
        ops.conv(x, w, stride=2, threads=1)
        ops.conv(np.ones((2, 4, 30, 30)), np.ones((8, 4, 1, 1)), stride=2, threads=1)
    finally:
        np.matmul = real  # type: ignore[assignment]
    assert seen and set(seen) == {1}
    assert [lib.num_threads for lib in libs] == before


# -- buffers ----------------------------------------------------------------------------------

def test_scratch_is_reused_per_thread_for_any_shape_and_dtype() -> None:
    a = _workspace.scratch("test", (100, 7), np.float64)
    b = _workspace.scratch("test", (33, 5), np.float32)
    assert np.shares_memory(a, b) and b.flags.c_contiguous and b.dtype == np.float32
    assert b.ctypes.data % _workspace.ALIGN == 0
    other: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: other.append(
        _workspace.scratch("test", (33, 5), np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(other[0], b)


def test_buffers_reused_across_calls_with_other_shapes_and_dtypes(tiny_pieces: None) -> None:
    """Big then small then big again, float64 and float32 interleaved: no leftovers leak."""
    cases = [_case(2, 12, 8, (17, 15), 3, 2, 1), _case(1, 3, 4, (6, 5), 5, 2, 2),
             _case(2, 12, 8, (17, 15), 3, 2, 1), _case(3, 5, 7, (9, 12), 3, 1, 1)]
    for i, case in enumerate(cases):
        _against_torch(case, 20 + i)
        _against_torch(case, 30 + i, np.float32, 2e-5)


@pytest.mark.parametrize("case", [
    _case(3, 6, 4, (11, 9), 3, 2, 1),  # patches + GEMM path
    _case(3, 6, 4, (11, 9), 1, 2, 0),  # 1x1 path
    _case(2, 1, 1, (7, 7), 1, 1, 1),  # one channel in and out: the weight gradient is one block
])
def test_returned_gradients_own_their_memory(case: ConvCase) -> None:
    """Per-stripe weight-gradient sums live in a reused buffer: a later call (same shapes, other
    numbers) must not change what an earlier call returned."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_chunks, "column_bytes", lambda backward=False: 256)
        first = _all(case, *_arrays(case, 60)[:3], np.ones(
            ops.conv(*_arrays(case, 60)[:2], None, case.stride, case.padding).shape), threads=2)
        kept = [a.copy() for a in first]
        x, w, b = _arrays(case, 61)
        _against_torch(case, 61, threads=2)
        _all(case, x, w, b, np.full(first[0].shape, 3.0), threads=2)
    for a, e in zip(first, kept):
        assert np.array_equal(a, e)


def test_concurrent_calls_share_no_buffer() -> None:
    """Four user threads, each calling with several threads, shapes and dtypes at once: every
    result equals the same call made alone, bit for bit."""
    cases = [(_case(3, 3, 16, (45, 41), 7, 2, 3), np.float32),
             (_case(2, 24, 16, (29, 29), 3, 2, 1), np.float64),
             (_case(2, 8, 12, (21, 25), 3, 1, 1, groups=2), np.float32),
             (_case(2, 32, 16, (22, 22), 1, 2, 0), np.float64)]
    inputs = []
    for i, (case, dtype) in enumerate(cases):
        x, w, b = _arrays(case, 40 + i, dtype)
        y = ops.conv(x, w, b, case.stride, case.padding, 1, case.groups)
        g = np.random.default_rng(i).standard_normal(y.shape).astype(dtype)
        inputs.append((case, x, w, b, g))
    alone = [_all(*item, threads=2) for item in inputs]

    def job(index: int) -> tuple[np.ndarray, ...]:
        return _all(*inputs[index % len(inputs)], threads=2)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(job, range(4 * len(inputs))))
    for index, result in enumerate(results):
        for a, e in zip(result, alone[index % len(inputs)]):
            assert np.array_equal(a, e), f"concurrent call {index} differs"


# -- the weight cache -------------------------------------------------------------------------

def test_weight_cache_hits_and_never_returns_stale_weights() -> None:
    case = _case(2, 16, 32, (12, 12), 3, 2, 1)
    x, w, b = _arrays(case, 50)
    assert w.nbytes >= _weights.MIN_BYTES
    y = ops.conv(x, w, b, 2, 1)
    before = _weights.WEIGHTS.hits
    assert np.array_equal(ops.conv(x, w, b, 2, 1), y)
    assert _weights.WEIGHTS.hits > before  # unchanged weight: reordered matrix reused

    def check(weight: np.ndarray, what: str) -> None:
        y_ref = ref.conv(case, x, weight, b, None)[0]
        ref.assert_close(ops.conv(x, weight, b, 2, 1), y_ref, 1e-10, what)
        g = np.ones_like(y)
        gx_ref = ref.conv(case, x, weight, b, g)[1]
        ref.assert_close(ops.conv_backward(g, x, weight, 2, 1)[0], gx_ref, 1e-10, what)

    w[3, 5, 1, 2] += 1.0
    check(w, "one element changed in place")
    w *= 0.5
    check(w, "scaled in place")
    w[...] = 0.0
    w[0, 0, 0, 0] = -0.0
    check(w, "zeroed")
    w[0, 0, 0, 0] = 1.0
    check(w, "one element after zeroing")
    other = w.copy()
    other[1] = 2.0
    check(other, "a different array of the same shape")
    view = w[:, :, ::-1, ::-1]  # not C-contiguous: computed directly
    check(np.ascontiguousarray(view), "flipped copy")


def test_cached_weight_matrices_are_read_only_copies() -> None:
    cache = _weights.WeightCache()
    w = np.arange(4 * 1024, dtype=np.float64).reshape(64, 64)
    first = cache.get(w, "t", lambda a: a.T)
    assert not first.flags.writeable and not np.shares_memory(first, w)
    assert cache.get(w, "t", lambda a: a.T) is first
    w[0, 1] = -1.0
    second = cache.get(w, "t", lambda a: a.T)
    assert second is not first and second[1, 0] == -1.0 and first[1, 0] == 1.0
    del w
    assert len(cache) == 0  # entries die with their array


@pytest.mark.parametrize("cin, k, s, p, threads", [
    (5, 3, 2, 1, 2),  # few channels: the channels-first phase buffer
    (20, 3, 2, 1, 3),  # channels-last buffer
    (20, 3, 1, 1, 1),
    (24, 1, 2, 0, 2),  # 1x1 strided: bands zero their own input rows
    (24, 1, 3, 0, 1),
])
def test_input_gradient_is_zeroed_by_the_workers(cin: int, k: int, s: int, p: int, threads: int,
                                                 tiny_pieces: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Input-gradient buffers are uninitialised and zeroed image by image (band by band) in the
    workers: with every fresh np.empty filled with NaN, a pixel left unzeroed would show."""
    real_empty = np.empty

    def poisoned(*args: object, **kwargs: object) -> np.ndarray:
        out = real_empty(*args, **kwargs)  # type: ignore[call-overload]
        if out.dtype.kind == "f":
            out.fill(np.nan)
        return out

    case = _case(3, cin, 7, (11, 10), k, s, p)
    x, w, b = _arrays(case, seed=4)
    g = np.random.default_rng(9).standard_normal(
        ops.conv(x, w, b, case.stride, case.padding).shape)
    expected = ref.conv(case, x, w, b, g)
    monkeypatch.setattr(_pointwise, "column_bytes", lambda: 600)  # 1x1: bands of 1-2 rows
    monkeypatch.setattr(np, "empty", poisoned)
    gx, gw, _ = ops.conv_backward(g, x, w, case.stride, case.padding, threads=threads)
    ref.assert_close(gx, expected[1], 1e-10, f"grad_x {case}")
    ref.assert_close(gw, expected[2], 1e-10, f"grad_weight {case}")


@pytest.mark.parametrize("cin, k, s, d", [(3, 7, 2, 1), (2, 3, 1, 1), (3, 3, 2, 2), (40, 3, 2, 1)])
def test_gather_by_kernel_rows_copies_the_same_patches(cin: int, k: int, s: int, d: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Short kernel-row runs are gathered as opaque elements: the patch matrix must equal the
    one gathered number by number (SHORT_RUN = 0) and a brute-force patch of the padded input."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, cin, 15, 13)).astype(np.float32)
    geom = conv_geometry(x.shape, (4, cin, k, k), (s, s), 2, (d, d), 1)
    view = _gemm.padded_view(x, geom)
    pieces = [piece for unit in _chunks.plan(geom, 4, budget=900) for piece in unit]
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for piece in pieces:
        by_runs = _gemm.gather(view, piece, geom).copy()
        with monkeypatch.context() as patch:
            patch.setattr(_gemm, "SHORT_RUN", 0)
            assert np.array_equal(by_runs, _gemm.gather(view, piece, geom))
        n, row = piece.images.start, piece.rows.start  # first patch of the piece, brute force
        window = padded[n, :, row * s:row * s + d * (k - 1) + 1:d, 0:d * (k - 1) + 1:d]
        assert np.array_equal(by_runs[0, 0], window.transpose(1, 2, 0).reshape(-1))
