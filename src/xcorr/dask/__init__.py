"""xcorr on Dask arrays: images larger than memory and batches larger than one machine, with the same results.

``xcorr.dask.filter2d``, ``xcorr.dask.conv2d`` and ``xcorr.dask.match_template`` take a ``dask.array.Array`` and
return a lazy one whose computed values equal :func:`xcorr.filter2d` / :func:`xcorr.conv2d` /
:func:`xcorr.match_template` on the whole array in memory, for every mode, boundary, stride, dilation and padding
mode (every method and mask), at chunk edges and at the array's outer edge. Each output chunk is one call of
the in-memory function on its input chunk plus a halo, so every chunk gets xcorr's planned (fast) algorithm:

1. the whole array is extended lazily past its outer edge exactly as ``numpy.pad`` would (any width, every mode;
   ``dask.array.pad`` is wrong for pads wider than the array), so no chunk needs to know where the edge is;
2. the extended array is cut so that output chunk ``j`` reads padded rows ``[stride * a_j, stride * a_{j+1})``
   plus ``extent - stride`` rows of the next chunk (an asymmetric ``map_overlap`` depth; even kernels need no
   special case), chunks smaller than that halo being merged with a neighbour first;
3. each block is correlated in ``"valid"`` mode. Output chunks lie over the input chunks they come from
   (``mode="same"`` keeps the input's chunks exactly).

``filter_to_zarr`` from a stored array (a Zarr or TIFF path) needs no such graph: each task reads its output
chunk's window, halo and outer boundary included, straight from the store (the boundary by index mapping, as
``numpy.pad``), filters it in ``"valid"`` mode and writes the chunk. The tasks are independent, so memory is one
window per worker thread, whatever the image size and whatever order the scheduler picks.

Threads: Dask already runs one task per worker thread and sizes its pools to the cores (the threaded scheduler
has one thread per core; a ``LocalCluster`` splits the cores among workers x threads), so each task runs the
kernel with ``threads_per_task=1`` torch (and numba, which follows torch) thread by default: never more threads
than cores. Give a task more (``threads_per_task = cores per worker // threads per worker``) only when a worker has
fewer threads than cores, e.g. ``dask worker --nthreads 1`` on an 8-core machine. Each task sets torch's thread
count in its own thread; the caller's setting is restored when the last xcorr task ends.

The core package never imports this package (or Dask): ``pip install xcorr[dask]``, then ``import xcorr.dask``.

Modules: :mod:`~xcorr.dask.arrays` (the ``map_overlap`` route, built on :mod:`~xcorr.dask.tiling` and
:mod:`~xcorr.dask.extension`), :mod:`~xcorr.dask.stores` (the window-per-task route, reading through
:mod:`~xcorr.dask.windows`), :mod:`~xcorr.dask.tasks` (what runs inside a task) and :mod:`~xcorr.dask.checks`.
"""

from xcorr.dask.arrays import conv2d, filter2d, match_template
from xcorr.dask.stores import Progress, filter_to_zarr, open_array
from xcorr.dask.windows import MIN_READ_CHUNK

__all__ = ["MIN_READ_CHUNK", "Progress", "conv2d", "filter2d", "filter_to_zarr", "match_template", "open_array"]
