"""One function per contender: xcorr and each peer library, each turning a case into a ready-to-time call.

Every function takes ``(case, inputs, threads)`` and returns a :class:`Runner`, or ``None`` when the library has
no way to compute that case. Inputs are converted to the library's own layout (NumPy, H x W x C, torch tensors)
before timing, never inside the timed call; :attr:`Runner.arrays` converts the result back to the case's layout
afterwards, so every contender's output can be compared with every other's. A peer whose library is not installed
raises :class:`NotInstalledError`.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

import xcorr
from bench.cases import COPY, CV2_FILTER, CV2_SEP, FFT_CONV, NDIMAGE, OACONVOLVE, TORCH, Case, Inputs


class NotInstalledError(Exception):
    """The peer's library is not installed."""


@dataclass(frozen=True)
class Runner:
    """``call()`` computes the case (layer cases with backward: the output and both gradients); ``arrays`` turns
    its result into NumPy arrays in the case's layout: [output] or [output, input grad, weight grad]."""

    call: Callable[[], object]
    arrays: Callable[[object], list[np.ndarray]]


PeerFunction = Callable[[Case, Inputs, int], Runner | None]


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise NotInstalledError(f"{module} is not installed") from error


def _numpy(result: object) -> np.ndarray:
    return result.detach().numpy() if isinstance(result, Tensor) else np.asarray(result)


def _as_arrays(result: object) -> list[np.ndarray]:
    parts = result if isinstance(result, tuple) else (result,)
    return [_numpy(part) for part in parts]


def _reshaped(shape: tuple[int, ...]) -> Callable[[object], list[np.ndarray]]:
    return lambda result: [_numpy(result).reshape(shape)]


def _layer_runner(case: Case, inputs: Inputs, conv: Callable[[Tensor, Tensor], Tensor]) -> Runner:
    """A layer case for any ``conv(x, w)``: forward under ``no_grad``, or forward + ``sum().backward()``."""
    x, w = torch.from_numpy(inputs.image), torch.from_numpy(inputs.kernel)
    if not case.backward:

        def forward() -> Tensor:
            with torch.no_grad():
                return conv(x, w)

        return Runner(forward, _as_arrays)
    x.requires_grad_(True)
    w.requires_grad_(True)

    def forward_backward() -> tuple[Tensor, Tensor | None, Tensor | None]:
        x.grad = w.grad = None
        y = conv(x, w)
        y.sum().backward()
        return y.detach(), x.grad, w.grad

    return Runner(forward_backward, _as_arrays)


def _slices_runner(case: Case, inputs: Inputs, conv: Callable[[Tensor, Tensor, int], Tensor]) -> Runner:
    """A filter case for torch-style ``conv(x (B, 1, H, W), w (1, 1, k, k), padding)``, under ``no_grad``."""
    h, w = case.image_shape[-2:]
    x = torch.from_numpy(inputs.image).reshape(-1, 1, h, w)
    kernel = torch.from_numpy(inputs.kernel)[None, None]

    def forward() -> Tensor:
        with torch.no_grad():
            return conv(x, kernel, case.kernel_size // 2)

    return Runner(forward, _reshaped(case.output_shape))


def xcorr_runner(case: Case, inputs: Inputs, threads: int, algo: str = "auto") -> Runner:
    """``xcorr.filter2d`` (NumPy in and out) or ``xcorr.conv2d`` (torch, autograd), with ``algo``."""
    if case.kind == "layer":
        pad, groups = case.kernel_size // 2, case.groups
        return _layer_runner(case, inputs, lambda x, w: xcorr.conv2d(x, w, padding=pad, groups=groups, algo=algo))
    image, kernel = inputs.image, inputs.kernel
    return Runner(lambda: xcorr.filter2d(image, kernel, mode="same", algo=algo), _as_arrays)


def copy_floor(case: Case, inputs: Inputs, threads: int) -> Runner:
    """A plain copy of the input (read + write): the floor for memory-bound small kernels."""
    if case.kind == "layer":
        x = torch.from_numpy(inputs.image)
        return Runner(x.clone, _as_arrays)
    return Runner(inputs.image.copy, _as_arrays)


def cv2_filter2d(case: Case, inputs: Inputs, threads: int) -> Runner | None:
    """``cv2.filter2D`` with ``BORDER_CONSTANT`` (zeros): H x W x 3 for RGB, a loop over a stack."""
    if case.kind != "filter":
        return None
    cv2 = _require("cv2")
    kernel, border = inputs.kernel, cv2.BORDER_CONSTANT
    if case.layout == "gray":
        image = inputs.image
        return Runner(lambda: cv2.filter2D(image, -1, kernel, borderType=border), _as_arrays)
    if case.layout == "rgb":
        interleaved = np.ascontiguousarray(inputs.image.transpose(1, 2, 0))
        return Runner(
            lambda: cv2.filter2D(interleaved, -1, kernel, borderType=border),
            lambda result: [_numpy(result).transpose(2, 0, 1)],
        )
    stack = inputs.image

    def each_image() -> np.ndarray:
        out = np.empty_like(stack)
        for image, target in zip(stack, out, strict=True):
            cv2.filter2D(image, -1, kernel, dst=target, borderType=border)
        return out

    return Runner(each_image, _as_arrays)


def cv2_sep_filter2d(case: Case, inputs: Inputs, threads: int) -> Runner | None:
    """``cv2.sepFilter2D`` given the 1-D factors, for kernels that are an outer product (gray images)."""
    if case.kind != "filter" or inputs.factors is None or case.layout != "gray":
        return None
    cv2 = _require("cv2")
    (column, row), image = inputs.factors, inputs.image
    return Runner(
        lambda: cv2.sepFilter2D(image, -1, row, column, borderType=cv2.BORDER_CONSTANT),
        _as_arrays,
    )


def scipy_oaconvolve(case: Case, inputs: Inputs, threads: int) -> Runner | None:
    """``scipy.signal.oaconvolve`` with the flipped kernel, ``mode="same"``, on ``threads`` FFT workers."""
    if case.kind != "filter":
        return None
    signal, fft = _require("scipy.signal"), _require("scipy.fft")
    image = inputs.image
    flipped = np.ascontiguousarray(inputs.kernel[::-1, ::-1])
    if image.ndim == 3:
        flipped = flipped[None]

    def convolve() -> np.ndarray:
        with fft.set_workers(threads):
            return signal.oaconvolve(image, flipped, mode="same", axes=(-2, -1))  # type: ignore[no-any-return]

    return Runner(convolve, _as_arrays)


def scipy_ndimage(case: Case, inputs: Inputs, threads: int) -> Runner | None:
    """``scipy.ndimage.correlate`` with ``mode="constant"`` (single-threaded: SciPy has no option)."""
    if case.kind != "filter":
        return None
    ndimage = _require("scipy.ndimage")
    image = inputs.image
    kernel = inputs.kernel if image.ndim == 2 else inputs.kernel[None]
    return Runner(lambda: ndimage.correlate(image, kernel, mode="constant", cval=0.0), _as_arrays)


def torch_conv2d(case: Case, inputs: Inputs, threads: int) -> Runner:
    """``torch.nn.functional.conv2d`` with zero padding k // 2 (filter cases: every slice as a batch item)."""
    conv = torch.nn.functional.conv2d
    if case.kind == "layer":
        pad, groups = case.kernel_size // 2, case.groups
        return _layer_runner(case, inputs, lambda x, w: conv(x, w, padding=pad, groups=groups))
    return _slices_runner(case, inputs, lambda x, w, pad: conv(x, w, padding=pad))


def fft_conv_pytorch(case: Case, inputs: Inputs, threads: int) -> Runner:
    """``fft_conv_pytorch.fft_conv`` with zero padding k // 2."""
    fft_conv = _require("fft_conv_pytorch").fft_conv
    # fft-conv-pytorch 1.2 indexes with a list, which torch >= 2.x warns about on every call.
    warnings.filterwarnings("ignore", "Using a non-tuple sequence", UserWarning)
    if case.kind == "layer":
        pad, groups = case.kernel_size // 2, case.groups
        return _layer_runner(case, inputs, lambda x, w: fft_conv(x, w, padding=pad, groups=groups))
    return _slices_runner(case, inputs, lambda x, w, pad: fft_conv(x, w, padding=pad))


# Peers that compute in a narrower dtype than their inputs: fft-conv-pytorch 1.2 casts to float32 before its FFTs.
COMPUTE_DTYPE = {FFT_CONV: "float32"}


def compute_dtype(peer: str, case: Case) -> str:
    """The dtype ``peer`` computes ``case`` in: the case's, or narrower for the peers in ``COMPUTE_DTYPE``."""
    narrower = COMPUTE_DTYPE.get(peer)
    return case.dtype if narrower is None or np.dtype(narrower).itemsize >= np.dtype(case.dtype).itemsize else narrower


# The peers in the order the tables list them (the copy floor first).
PEERS: dict[str, PeerFunction] = {
    COPY: copy_floor,
    CV2_FILTER: cv2_filter2d,
    CV2_SEP: cv2_sep_filter2d,
    OACONVOLVE: scipy_oaconvolve,
    NDIMAGE: scipy_ndimage,
    TORCH: torch_conv2d,
    FFT_CONV: fft_conv_pytorch,
}
