"""The cost model's constants: seconds per unit of work, one table for every algorithm.

Measured on the development machine (2 cores, x86_64 with AVX2, 2 torch/numba threads, float32) with
``python -m bench.calibrate``, which prints this table; rerun it on another machine and paste its output here,
or let ``xcorr.tune`` measure the real shapes instead. The model only has to rank algorithms, not predict
times to the millisecond.
"""

# Fixed price of any call: argument checks, planning-cache lookup, one output allocation.
CALL_OVERHEAD = 1.2e-5

# What a differentiable call through xcorr's autograd node and operator costs beyond torch's own conv2d under
# torch's own autograd (the autograd.Function, dispatch, planning the backward): 120-230 us in
# `python -m bench.overhead` (tiny dense and depthwise layers, forward + backward, 2 threads). Where torch's kernel
# is estimated within this of xcorr's plan, a differentiable call runs torch's kernel.
AUTOGRAD_OVERHEAD = 1.5e-4

# A layout copy (channels last to contiguous or back), per element: 0.4-1.0 ns measured on 4x96x56x56,
# 4x384x14x14 and 8x32x112x112 float32 (2 threads).
COPY_PER_ELEMENT = 7e-10

# reference: torch shift-and-add, one einsum per kernel tap.
REFERENCE_PER_MAC = 1.0e-9
REFERENCE_PER_TAP_PIXEL = 2.0e-9
REFERENCE_PER_TAP = 1.5e-5  # one einsum call

# vendor: torch.nn.functional.conv2d (oneDNN). Dense layers vectorise over channels; single-channel images
# pay a large per-output-pixel overhead.
VENDOR_PER_MAC_DENSE = 1.7e-11
VENDOR_PER_MAC_THIN = 2.5e-10
VENDOR_PER_OUTPUT_PIXEL_THIN = 3.4e-8
# Depthwise layers (one input channel per group, as many outputs): torch has a kernel of its own for them.
VENDOR_PER_MAC_DEPTHWISE = 3.1e-11
VENDOR_PER_OUTPUT_PIXEL_DEPTHWISE = 1.6e-9

# ---- fft (src/xcorr/algo/fft.py): overlap-save FFT tiles. ----
# Set from single-thread microbenchmarks of each step (quiet moments of a shared 2-core machine) divided by 1.8
# for 2 threads; `python -m bench.calibrate` refits them (its least-squares fit needs a quiet machine).
# float32 figures, per real tile (a complex transform of a tile pair counts as two); float64 costs twice as much.
# Transforms (forward and inverse alike), per point per log2(points of the transform).
FFT_PER_POINT_LOG2 = 1.1e-10
# Fixed price of one tile transform (dispatch, short-transform inefficiency).
FFT_PER_TRANSFORM = 3.5e-06
# One complex multiply-add of the channel contraction.
FFT_PER_SPECTRUM_MAC = 6.9e-10
# Gathering tile pixels and scattering outputs, per tile point.
FFT_PER_TILE_POINT = 3.4e-10
# Python and dispatch overhead of one chunk of tiles (about 25 tensor operations).
FFT_PER_CHUNK = 0.00034
# Largest tile (points) chosen unless the kernel needs more: larger tiles fall out of cache.
FFT_MAX_TILE_POINTS = 512 * 512
# ---- end of fft ----

# ---- direct and separable (src/xcorr/algo/{direct,separable}.py): numba row sweeps. ----
# Fitted like fft's: bench.calibrate's direct_constants and separable_constants timed on 1 thread (CPU time, the
# shared 2-core machine being busy) and divided by 1.8 for 2 threads; `python -m bench.calibrate` refits them on
# a quiet machine. Per output row (tap list, border strips or block copies) and per multiply-add of the sweeps.
DIRECT_PER_ROW = 1.7e-7
# Each column of each sweep of the inner loop (up to eight taps added into a loaded and stored output column):
# what makes a tail of one or two taps dear (not in the four-row sweeps' price, fitted per multiply-add).
# DIRECT_PER_ROW and DIRECT_PER_SWEEP_COLUMN fitted on depthwise layers (7-224 px, k 3-7, stride 1 and 2),
# 1024x1024 images and strided multi-channel rows, with DIRECT_PER_MAC_F32 kept.
DIRECT_PER_SWEEP_COLUMN = 1.35e-10
DIRECT_PER_MAC_F32 = 3.8e-11
DIRECT_PER_MAC_F64 = 5.7e-11
# The four-row sweeps' time per multiply-add over the one-row sweeps' (3x3, kernel rows in sevens and fives);
# fitted by bench.calibrate on 2 threads (float32, 1024x1024, k = 3, 5, 7, 10, 14).
DIRECT_FOUR_ROW_MAC_FACTOR = 0.60
# The "dots" mode (wide kernels, narrow outputs: weight gradients): per dot product along a kernel row, and its
# time per multiply-add over the one-row sweeps'.
DIRECT_PER_DOT = 1.4e-8
DIRECT_DOTS_MAC_FACTOR = 0.48
# Separable: per output row per (input channel, rank term) pair of passes, and per multiply-add of the passes
# (the vertical one over input columns, the horizontal one over output columns); float64 scaled as for direct.
SEPARABLE_PER_TERM_ROW = 5.6e-7
SEPARABLE_PER_MAC = 5.0e-11
# ---- end of direct and separable ----
