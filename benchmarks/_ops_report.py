"""Table, targets and the docs page for bench_ops.py (pure formatting, no timing)."""

from __future__ import annotations

from dataclasses import dataclass

IMPLS = ("stridelab", "torch NCHW", "torch CL", "im2col", "einsum")
GEMM = "GEMM floor"  # stridelab's own matrix products alone (benchmarks/_ops_floor.py)
FWD_TARGET = 1.6
BWD_TARGET = 1.25
STRIDE_TARGET = 3.5
IDIOM_TARGET = 2.0


@dataclass(frozen=True)
class Row:
    layer: str
    stride: int
    strided: bool  # the layer's own stride (not its stride-1 counterpart)
    pass_name: str  # "fwd" or "bwd" (grad_x + grad_weight)
    flops: int  # 2 * MACs (backward = 2 * forward)
    times: dict[str, float]  # seconds, per implementation and GEMM

    @property
    def torch_best(self) -> float:
        return min(self.times["torch NCHW"], self.times["torch CL"])


@dataclass(frozen=True)
class Memory:
    """Peak bytes of one cold stem forward (batch 8) per implementation."""

    peaks: dict[str, int]


def render_table(rows: list[Row]) -> str:
    head = ("| layer | stride | pass | GFLOP | " + " | ".join(IMPLS) + f" | {GEMM} | "
            "stridelab / torch | stridelab / GEMM | floor = GEMM / torch |\n"
            "|---|---|---|---|" + "---|" * (len(IMPLS) + 4))
    lines = [head]
    for r in rows:
        cells = []
        for impl in (*IMPLS, GEMM):
            t = r.times[impl]
            cells.append(f"{t * 1e3:.1f} ms, {r.flops / t / 1e9:.0f} GF/s")
        mine, gemm = r.times["stridelab"], r.times[GEMM]
        lines.append(f"| {r.layer} | {r.stride} | {r.pass_name} | {r.flops / 1e9:.2f} | "
                     + " | ".join(cells)
                     + f" | {mine / r.torch_best:.2f}x | {mine / gemm:.2f}x | "
                       f"{gemm / r.torch_best:.2f}x |")
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _sum(rows: list[Row], pass_name: str, impl: str) -> float:
    if impl == "torch best":
        return sum(r.torch_best for r in rows if r.pass_name == pass_name)
    return sum(r.times[impl] for r in rows if r.pass_name == pass_name)


def stride_ratios(strided: Row, rows: list[Row]) -> dict[str, float]:
    """time(stride 1) / time(stride s) of one strided row, for stridelab, torch and the GEMMs.

    The ``GEMM`` entry is the floor ratio: the engine's own products alone at stride 1 over the
    same at stride s. The MACs shrink by prod(s), so it is about 4 at stride 2 unless the GEMM
    rate differs between the two shapes; the engine's ratio stays below it by the share of
    non-GEMM work (layout copies, gathering, col2im, zero-filling) that does not shrink as fast.
    """
    dense = next(d for d in rows if d.layer == strided.layer and d.pass_name == strided.pass_name
                 and not d.strided)
    return {
        "stridelab": dense.times["stridelab"] / strided.times["stridelab"],
        "torch best": dense.torch_best / strided.torch_best,
        GEMM: dense.times[GEMM] / strided.times[GEMM],
    }


def _vs_torch(strided: list[Row], pass_name: str, impl: str) -> float:
    return _sum(strided, pass_name, impl) / _sum(strided, pass_name, "torch best")


def _idiom_over(strided: list[Row], pass_name: str, impl: str) -> float:
    return _sum(strided, pass_name, "im2col") / _sum(strided, pass_name, impl)


def _slower_than_idiom(rows: list[Row], impl: str) -> list[str]:
    return [f"{r.layer} s{r.stride} {r.pass_name}" for r in rows
            if r.times[impl] > r.times["im2col"]]


def _at_floor(ok: bool, met: bool, score: str) -> str:
    """For a NOT MET target: what an engine running at its GEMM floor would score here."""
    if met:
        return ""
    reach = "MET: reachable here" if ok else "NOT MET: not reachable with these GEMMs here"
    return f"; at the GEMM floor: {score} ({reach})"


def targets(rows: list[Row], memory: Memory | None) -> list[str]:
    """Issue 15's targets, each MET / NOT MET, plus the floor the GEMMs set.

    For every NOT MET target the line ends with the same target scored on the GEMM floor column
    of the same run (the engine's own products alone, nothing else), so it says whether the
    target is reachable on this machine at all.
    """
    out = []
    strided = [r for r in rows if r.strided]
    for pass_name, limit in (("fwd", FWD_TARGET), ("bwd", BWD_TARGET)):
        mine = _sum(strided, pass_name, "stridelab")
        best = _sum(strided, pass_name, "torch best")
        floor = _sum(strided, pass_name, GEMM)
        met = mine / best <= limit
        out.append(f"[{_verdict(met)}] {pass_name}: stridelab / torch best "
                   f"layout, summed over the strided layers = {mine / best:.2f}x (target <= "
                   f"{limit}x; {mine * 1e3:.1f} vs {best * 1e3:.1f} ms; GEMM floor "
                   f"{floor / best:.2f}x, stridelab / GEMM {mine / floor:.2f}x)"
                   + _at_floor(floor / best <= limit, met, f"floor / torch = {floor / best:.2f}x"))
    for pass_name in ("fwd", "bwd"):
        ratio = _idiom_over(strided, pass_name, "stridelab")
        floor = _idiom_over(strided, pass_name, GEMM)
        met = ratio >= IDIOM_TARGET
        out.append(f"[{_verdict(met)}] {pass_name}: as_strided im2col / "
                   f"stridelab, summed over the strided layers = {ratio:.2f}x "
                   f"(target >= {IDIOM_TARGET}x)"
                   + _at_floor(floor >= IDIOM_TARGET, met, f"im2col / floor = {floor:.2f}x"))
    slower = _slower_than_idiom(rows, "stridelab")
    floor_slower = _slower_than_idiom(rows, GEMM)
    out.append(f"[{_verdict(not slower)}] never slower than as_strided im2col on a single row"
               + (f" (slower on: {', '.join(slower)})" if slower else f" (all {len(rows)} rows)")
               + _at_floor(not floor_slower, not slower,
                           "floor slower than im2col on " + (", ".join(floor_slower) or "no row")))
    for pass_name in ("fwd", "bwd"):
        parts = []
        floors = []
        ok = True
        for r in strided:
            if r.pass_name != pass_name:
                continue
            ratios = stride_ratios(r, rows)
            ok = ok and ratios["stridelab"] >= STRIDE_TARGET
            floors.append(ratios[GEMM])
            parts.append(f"{r.layer.split()[0]} {ratios['stridelab']:.2f} (torch "
                         f"{ratios['torch best']:.2f}, GEMM floor {ratios[GEMM]:.2f})")
        out.append(f"[{_verdict(ok)}] {pass_name}: time(stride 1) / time(stride 2) >= "
                   f"{STRIDE_TARGET} on every layer: " + "; ".join(parts)
                   + _at_floor(min(floors) >= STRIDE_TARGET, ok,
                               f"lowest floor ratio {min(floors):.2f}"))
    if memory is not None:
        mine, idiom = memory.peaks["stridelab"], memory.peaks["im2col"]
        others = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in memory.peaks.items())
        out.append(f"[{_verdict(mine < idiom)}] peak memory of the stem forward at batch 8 below "
                   f"the im2col idiom's: {others} (cold call, tracemalloc, output included)")
    return out


def render_doc(table: str, verdicts: list[str], machine: list[str], stamp: str, repeats: int,
               phases: str, threads: str, settle: float) -> str:
    described = "\n".join(f"- {line}" for line in machine)
    return f"""# stridelab.ops benchmark

Generated by `benchmarks/bench_ops.py` (`make bench`) on {stamp}, best of up to {repeats}
interleaved warm runs per row (every implementation, at the layer's stride and at stride 1, timed
round-robin in the same rounds, so load from other processes hits all of them alike;
{settle:g} s idle before each timed call, so that BLAS threads the previous implementation left
spinning do not take a core from the next one). Read the
ratios; absolute times belong to this machine:

{described}

What is timed: batch 8, float32, NCHW input, ResNet-50's three strided layers and the same
layers at stride 1 on the same input. `fwd` is the convolution; `bwd` is grad_x + grad_weight
(no bias). GFLOP counts FLOPs = 2 x MACs (backward = 2 x forward). `torch NCHW` / `torch CL`:
PyTorch in both memory formats, "torch best" is the faster of the two per row. `im2col` is the
`as_strided` patches + matmul idiom and `einsum` the `sliding_window_view` +
`np.einsum(optimize=True)` idiom (both with a tap loop for grad_x); see
`benchmarks/_ops_idioms.py`.

`{GEMM}`: stridelab's own matrix products for that call, recorded (same shapes, same transposes)
and replayed alone with the engine's threading (`benchmarks/_ops_floor.py`): no gathering, no
col2im, no layout copies. It measures this NumPy's GEMM rate on the engine's shapes, so
`floor = GEMM / torch` is the best ratio any NumPy implementation doing these products can
reach here, and `stridelab / GEMM` is what the engine spends beyond its products.

stridelab's output (and so the grad_out fed to backward) keeps the memory layout the engine
computes in (channels-last for these layers), as PyTorch's channels_last does.

{table}

## Targets (issue 15)

{chr(10).join("- " + v for v in verdicts)}

## How stridelab.ops computes these

- General convolutions: the padded input is copied once to channels-last memory (into a buffer
  the calling thread reuses; the copy is split over the threads by image; an NCHW input of at
  most 4 channels, like the stem's 3, is interleaved channel by channel, each channel a
  contiguous read written at a stride, 2-3x faster than one transposing copy). The output
  positions are cut into pieces whose patch matrix (`rows x taps * C_in`) is about 1.5 per-core
  L2 caches (a band of output rows, or whole images when they are small); each thread gathers
  a piece into its own reused buffer (short kernel-row runs, like the stem's 7 taps x 3
  channels, copied as one opaque element each) and multiplies it by the weight matrix with
  single-threaded BLAS, writing straight into the result. The pieces depend on the geometry
  only, so the result is bit-identical for every thread count.
- The weight matrix (`(taps * C_in, C_out)`, a transposing copy) is cached per weight array and
  rebuilt when the array or its bytes change.
- 1x1 strided on NCHW input (the rows here): per band of output rows of an image (about 1.5
  L2 caches of subsample), each thread copies the sampled pixels channels-first into its buffer
  and multiplies `W @ sub` straight into the NCHW result: the stride-1 product's orientation
  and contiguous operands. Its backward, with that NCHW output gradient, takes one image per
  task: `grad_weight += grad_out[n] @ sub[n]^T` (per-stripe partial sums added in a fixed
  order) and `W^T @ grad_out[n]` written into the image's sampled pixels after zeroing it.
  At stride 1 (NCHW, the 1x1 rows' stride-1 calls) there is nothing to sample: the forward is
  `W @ x[n]` and the backward `grad_out[n] @ x[n]^T` and `W^T @ grad_out[n]` written straight
  into the input gradient, with no copy of any operand. With channels-last memory: pieces of
  output rows copied channels-last and multiplied by `W^T`; that backward copies the
  subsample once, then computes the weight gradient in blocks of 128 output channels (one
  whole product each) and the input gradient in bands of rows.
- Backward: per piece, `grad_weight += patches.T @ grad_out` and `grad_patches = grad_out @ W.T`,
  whose tap blocks are added into strided windows of the input gradient (col2im; where the
  windows' rows are contiguous, stride 1 on the last axis, `grad_patches` is computed one
  product per tap so that each block is contiguous too and every addition runs over whole
  rows: the 3x3's stride-1 col2im 13-20 ms instead of 23-37 ms on one thread). Threads take
  whole images, so no two threads add into the same pixels; each zeroes its images of the
  input gradient just before its first additions (no serial zero-filling by the caller). For
  the 3-channel stem the gradient buffer is channels-first and split by stride phase, so every
  addition is a unit-stride run; the thread that finished an image interleaves its phases
  into the input gradient right away (no pass over the batch at the end). No dense result is
  ever subsampled and no inserted zero is multiplied (tests/ops/test_work.py counts the BLAS
  multiply-adds: exactly the strided MACs; this benchmark checks the same).
- Threads: `threads=` on `conv` / `conv_backward`, else `STRIDELAB_NUM_THREADS`, else what
  NumPy's BLAS is allowed (threadpoolctl). See the `stridelab.ops` docstring.

## Why stride 2 is not 4x faster

`benchmarks/bench_ops_phases.py` splits every call of these layers (one thread, thread CPU time,
so a busy machine disturbs it little) into the layout copy, the gather, the GEMMs, col2im and the
rest; this run:

{phases}

Stride 2 shrinks the GEMMs, the gather and col2im with the output; two costs keep the size
of the *input*: the padded channels-last copy (3x3 and stem) and the zero-filled input gradient
(backward; zeroed by the worker threads, image by image or band by band, just before their
first additions, so it shows inside col2im / rest). On the 3x3 those are about 4-8 ms of a
65-90 ms stride-2 backward on one thread, and its gather and col2im shrink only 2-3x, so its
ratio stays at 3.0-3.7 while its GEMMs alone reach 3.6-4.2. The 1x1's stride-1 calls on NCHW
memory are their products and nothing else (no copy of any operand), while its stride-2 calls
read the sampled rows of the whole input (about 5 ms of a 26 ms forward on one thread) and its
backward writes the whole zero-filled input gradient, so its ratio is its GEMM ratio less that
share: about 3.3-3.4 on one thread here.
Tried and measured slower here: the 3x3 stride-2 patch matrix channels-first, gathered from
the unpadded NCHW input with border-aware slices (gather 12.2 vs 7.4 ms for copy + gather, one
thread; its products 30.5 vs 24 ms); nine per-tap products over shifted flat views of the
stride phases (no patch matrix at all; products with K = 128: 30.6 vs 24.6 ms); copying each
piece's band of padded rows in its worker instead of one whole copy (bands 8-11 ms vs 4 ms
whole, though the gather from a band is faster), each thread copying the whole images its
pieces read (no barrier before the pieces, but 3-4% more CPU time and no faster), and
gathering patches straight from NCHW input (padding by memcpy + strided gather 5.8 ms vs 5.3
ms). Measured no faster: the 3x3's 128-channel layout copy in
blocks of image rows or of channels (4.2-14.5 ms vs 2.5-2.8 ms for one copy, batch 8, one
thread, input in cache), per image or as uint64 pixel pairs first (3.4-4.6 ms vs 3.7 ms, input
not in cache), and the strided 1x1's subsample copy
with float pairs read as uint64 and truncated to uint32 (contiguous reads and writes: 2.95 vs
2.94 ms, one thread, in the engine) or with the sampled rows copied whole and subsampled in
cache (3.6 ms): these copies are bound by reading the input from memory, not by their access
pattern. Also no faster: skipping the zero-filling of the 3x3's input gradient (the last `s`
taps of each axis cover the padded input exactly once, so copying them first and adding the
others leaves only thin strips to zero): its input-gradient pass took 32.6 vs 33.1 ms at
stride 2 and 115 vs 111 ms at stride 1 (one thread, best of 30): each image is zeroed just
before its additions, while in cache, so the zeroing costs little. And a channels-last input
gradient split by stride phase (so that the 3x3's stride-2 windows are contiguous runs too):
its col2im took 3.8-6.0 instead of 8.5-9.7 ms, but interleaving the phases into the result
added 3.0-5.0 ms.

### On the engine's threads

Every parallel section of a call is timed per worker in thread CPU time
(`benchmarks/_ops_threads.py`): `serial` is the calling thread's work outside them (what a
second thread cannot shorten), `critical path` adds the slowest worker of each section (the
call's time on an idle machine with a core per thread), `total CPU` is all threads' work:

{threads}

The serial part is small (a few ms at most: the final weight-gradient sums, argument checks and
bookkeeping; the layout copy, the subsample copies and the zero-filling of input gradients run
on the worker threads), and `total / path` is close to the thread count, so the work is split
evenly. Where the wall times of the first table are well above the critical path, the threads
were slowed by what they share (memory bandwidth, the other processes and spinning BLAS threads
on a loaded machine), not by waiting for each other.

## Reading the numbers

- The floor column is measured in the same run, on the same machine, with the same NumPy: if
  it is above a target, no NumPy implementation using these GEMMs can meet it here. Which BLAS
  and which kernels NumPy loaded is in the header above; `OPENBLAS_*` variables change them, so
  they are listed too.
- The stride lines give, per layer, stridelab's time(stride 1) / time(stride 2), torch's, and
  the same ratio of the GEMM floor column (the engine's products alone). Stride 2 has 4x fewer
  MACs, so a ratio above 4 is impossible without a faster GEMM rate at stride 2; the GEMM ratio is
  what the products allow here, and the engine stays below it by the share of its per-call work
  that does not shrink with the output (the padded layout copy and the zero-filled input
  gradient are the size of the input at any stride).
- `make bench` on a quiet machine gives the numbers to quote; on a shared machine the ratios
  are noisy (several implementations run between two runs of the same one; a layer's stride-2
  and stride-1 calls share rounds, so a change of load hits both, but a burst can still land on
  one call: a stride ratio far above 4, for torch as for stridelab, is such a burst, not
  speed). The one-thread phase table and the thread
  table use CPU time and are the steadier ones.
"""
