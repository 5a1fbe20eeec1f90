"""What xcorr's planner runs for a case, and which algorithms can be forced on it.

The plan is built exactly as the engine builds it for the real call (:func:`xcorr.autograd.problem_for` reads the
kernel's rank, which lets the separable algorithm compete), so the table reports the choice that was timed.
"""

from __future__ import annotations

import torch

import xcorr
from bench.cases import Case, Inputs
from xcorr.arguments import mode_padding
from xcorr.autograd import problem_for
from xcorr.planner import plan_problem, vetoes


def plan_for(case: Case, inputs: Inputs) -> xcorr.Plan:
    """The plan ``algo="auto"`` follows for ``case`` (with the gradient products for backward cases)."""
    k = case.kernel_size
    if case.kind == "layer":
        x, w = torch.from_numpy(inputs.image), torch.from_numpy(inputs.kernel)
        padding, groups = (k // 2,) * 4, case.groups
    else:
        h, wid = case.image_shape[-2:]
        x = torch.from_numpy(inputs.image).reshape(-1, 1, h, wid)
        w, padding, groups = torch.from_numpy(inputs.kernel)[None, None], mode_padding("same", (k, k)), 1
    problem = problem_for(x, w, stride=(1, 1), padding=padding, dilation=(1, 1), groups=groups)
    return plan_problem(problem, requires_grad=case.backward)


def summary(plan: xcorr.Plan) -> str:
    """The chosen algorithms in one cell: ``fft`` or ``fwd fft, dx fft, dw direct``."""
    if plan.grad_input is None or plan.grad_weight is None:
        return f"{plan.forward.algorithm}"
    return f"fwd {plan.forward.algorithm}, dx {plan.grad_input.algorithm}, dw {plan.grad_weight.algorithm}"


def forceable(plan: xcorr.Plan) -> dict[str, float]:
    """Algorithms that can run the plan's forward product, each with the cost model's estimate in seconds."""
    vetoed = vetoes(plan.problem, "any")
    return {name: cost for name, cost in plan.forward.estimates if name not in vetoed}
