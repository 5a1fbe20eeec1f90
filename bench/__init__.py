"""xcorr's benchmark: ``python -m bench`` (``--quick`` for a one-minute smoke run, ``--help`` for options).

Every case of issue 3 runs in one process with xcorr and its peers side by side, on the same seeded inputs and
thread count: median and IQR per call, the planner's choice scored against every forced algorithm, extra peak
memory, and every xcorr output checked against every peer's. Modules, one job each:

- :mod:`bench.cases`: the case table, its presets (full, quick, tiny) and the bars of issue 3;
- :mod:`bench.peers`: one function per contender (xcorr, copy floor, OpenCV, SciPy, torch, fft-conv-pytorch);
- :mod:`bench.plans`: what xcorr's planner picks for a case and which algorithms can be forced;
- :mod:`bench.timing`: warm-up, repeats, median and IQR;
- :mod:`bench.memory`: extra peak resident memory of one call;
- :mod:`bench.suite`: runs the table (probes, skips, failures, output comparison);
- :mod:`bench.machine`: thread counts, CPU, versions, commit;
- :mod:`bench.report`: Markdown, JSON and the plot;
- :mod:`bench.cold_start`: first-call cost in fresh processes, with and without numba's disk cache.

Separate scripts: :mod:`bench.calibrate` (cost-model constants) and :mod:`bench.dask_bench` (out-of-core).
"""
