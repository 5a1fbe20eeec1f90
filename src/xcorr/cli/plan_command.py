"""``xcorr plan``: which algorithm ``xcorr.conv2d`` would run for given shapes, and why (nothing is computed)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

import torch
import typer

import xcorr
from xcorr.cli import console
from xcorr.cli.errors import UsageError
from xcorr.planner import Choice, Plan

EXAMPLES = """\
Examples:

  xcorr plan 1080x1920 5x5

  xcorr plan 8x64x56x56 128x64x3x3 --padding 1 --grad

  xcorr plan 3x512x512 7x7 --padding same --dtype float64 --json

SHAPE is HxW, CxHxW or NxCxHxW. KERNEL_SHAPE is khxkw (one output channel reading C/groups inputs), \
Oxkhxkw, or OxC/groupsxkhxkw. --padding is N, HxW, same, valid, or top,bottom,left,right.
"""

DtypeName = Literal["float16", "bfloat16", "float32", "float64"]
DTYPES = {name: getattr(torch, name) for name in get_args(DtypeName)}
_DIMS = re.compile(r"^\d+(x\d+)*$")


def parse_dims(text: str, name: str, lengths: tuple[int, ...]) -> tuple[int, ...]:
    """``"3x512x512"`` -> (3, 512, 512), checking the number of dimensions is one of ``lengths``.

    Raises:
        UsageError: not positive integers joined by ``x``, or a wrong count.
    """
    cleaned = text.strip().lower()
    if not _DIMS.match(cleaned):
        raise UsageError(f"{name} {text!r}: expected integers joined by 'x', such as 512x512")
    dims = tuple(int(d) for d in cleaned.split("x"))
    if len(dims) not in lengths:
        raise UsageError(f"{name} {text!r} has {len(dims)} dimensions; expected {' or '.join(map(str, lengths))}")
    return dims


def _padding(text: str) -> int | tuple[int, ...] | str:
    cleaned = text.strip().lower()
    if cleaned in ("same", "valid"):
        return cleaned
    parts = re.split(r"[x,]", cleaned)
    if not all(p.isdigit() for p in parts) or len(parts) not in (1, 2, 4):
        raise UsageError(f"--padding {text!r}: expected N, HxW, same, valid, or top,bottom,left,right")
    values = tuple(int(p) for p in parts)
    return values[0] if len(values) == 1 else values


def _choice_json(choice: Choice | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    return {"algorithm": choice.algorithm, "reason": choice.reason, "estimated_seconds": dict(choice.estimates)}


def plan_json(plan: Plan) -> dict[str, Any]:
    """A JSON-ready description of ``plan``: the problem's geometry and each choice with its estimates."""
    problem = plan.problem
    return {
        "input_shape": list(problem.input_shape),
        "weight_shape": list(problem.weight_shape),
        "output_shape": list(problem.output_shape),
        "stride": list(problem.stride),
        "padding": list(problem.padding),
        "dilation": list(problem.dilation),
        "groups": problem.groups,
        "dtype": str(problem.dtype).removeprefix("torch."),
        "device": str(problem.device),
        "forward": _choice_json(plan.forward),
        "grad_input": _choice_json(plan.grad_input),
        "grad_weight": _choice_json(plan.grad_weight),
    }


def plan_command(
    shape: Annotated[str, typer.Argument(help="Input shape: HxW, CxHxW or NxCxHxW.", show_default=False)],
    kernel_shape: Annotated[str, typer.Argument(help="Kernel shape: khxkw, Oxkhxkw or OxCxkhxkw.", show_default=False)],
    stride: Annotated[str, typer.Option(help="N or HxW.")] = "1",
    padding: Annotated[str, typer.Option(help="N, HxW, same, valid, or top,bottom,left,right.")] = "0",
    dilation: Annotated[str, typer.Option(help="N or HxW.")] = "1",
    groups: Annotated[int, typer.Option(min=1, help="Channel groups, as torch's conv2d.")] = 1,
    dtype: Annotated[DtypeName, typer.Option(help="Tensor dtype.")] = "float32",
    device: Annotated[str, typer.Option(help="Tensor device (cpu, cuda, cuda:1, ...).")] = "cpu",
    grad: Annotated[bool, typer.Option("--grad", help="Also plan the two gradient products (training).")] = False,
    rank: Annotated[
        int | None, typer.Option(min=1, help="Kernel rank if known (1: separable, lets that algorithm compete).")
    ] = None,
    tune: Annotated[bool, typer.Option("--tune", help="Measure the candidates here and remember the winner.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Print the algorithm xcorr would run for these shapes, the reason, and every candidate's estimated time."""
    dims = parse_dims(shape, "SHAPE", (2, 3, 4))
    batch, channels, height, width = (1,) * (4 - len(dims)) + dims
    kernel = parse_dims(kernel_shape, "KERNEL_SHAPE", (2, 3, 4))
    if len(kernel) < 4:
        outputs = kernel[0] if len(kernel) == 3 else 1
        kernel = (outputs, channels // groups, *kernel[-2:])
    arguments: dict[str, Any] = {
        "stride": parse_dims(stride, "--stride", (1, 2)),
        "padding": _padding(padding),
        "dilation": parse_dims(dilation, "--dilation", (1, 2)),
        "groups": groups,
        "dtype": DTYPES[dtype],
        "device": device,
        "requires_grad": grad,
        "weight_rank": rank,
    }
    for key in ("stride", "dilation"):
        arguments[key] = arguments[key][0] if len(arguments[key]) == 1 else arguments[key]
    try:
        result = (xcorr.tune if tune else xcorr.plan)((batch, channels, height, width), kernel, **arguments)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        console.emit_json(plan_json(result))
    else:
        console.stdout.print(str(result), markup=False)
