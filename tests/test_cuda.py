"""CUDA tensors: every algorithm that accepts them matches torch's float64 CPU result; skipped without a GPU."""

import pytest
import torch

import xcorr
from xcorr.algo import get_algorithm

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA_PROBLEM = xcorr.plan((2, 4, 96, 96), (4, 1, 9, 9), padding=4, groups=4, device="cuda").problem
CUDA_ALGORITHMS = [name for name in xcorr.algorithms() if get_algorithm(name).unsupported(CUDA_PROBLEM) is None]


def test_vendor_and_fft_run_on_cuda() -> None:
    assert {"vendor", "fft"} <= set(CUDA_ALGORITHMS)


@pytest.mark.parametrize("algo", CUDA_ALGORITHMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_depthwise_forward_and_backward_match_cpu(algo: str, dtype: torch.dtype) -> None:
    x = torch.randn(2, 4, 96, 96, dtype=torch.float64)
    w = torch.randn(4, 1, 9, 9, dtype=torch.float64)
    dy = torch.randn(2, 4, 96, 96, dtype=torch.float64)
    reference = torch.nn.functional.conv2d(x.requires_grad_(), w.requires_grad_(), padding=4, groups=4)
    expected = (reference, *torch.autograd.grad(reference, (x, w), dy))
    xc, wc = (t.detach().to("cuda", dtype).requires_grad_() for t in (x, w))
    y = xcorr.conv2d(xc, wc, padding=4, groups=4, algo=algo)
    got = (y, *torch.autograd.grad(y, (xc, wc), dy.to("cuda", dtype)))
    tolerance = 1e-4 if dtype == torch.float32 else 1e-9
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.device.type == "cuda" and ours.dtype == dtype
        torch.testing.assert_close(ours.double().cpu(), theirs.detach(), rtol=tolerance, atol=tolerance * 100)


def test_auto_filters_a_cuda_image() -> None:
    image = torch.rand(512, 512, device="cuda")
    kernel = torch.from_numpy(xcorr.kernels.gaussian(31, 5.0)).float().cuda()
    expected = torch.nn.functional.conv2d(image.double()[None, None], kernel.double()[None, None], padding=15)
    torch.testing.assert_close(xcorr.filter2d(image, kernel).double(), expected[0, 0], rtol=1e-4, atol=1e-5)
