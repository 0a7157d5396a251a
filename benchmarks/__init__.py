"""rconv benchmarks: ratios against the references, measured in one run.

Usage::

    python -m benchmarks [--threads N] [--quick] [--json PATH] [--huge]
                         [--only {signal,beyond,fft,ndimage,dask,nn,one_thread,grid,
                                  overhead,train}]
    python -m benchmarks --compare A.json B.json

(``python benchmarks/bench.py`` takes the same arguments.) The runner is ``__main__``, the
timing and the JSON file are in ``harness``, each section is a module of ``sections``, and the
networks of the train section are in ``nets``. Importing the package reads no arguments and
imports nothing: the runner sets the thread variables before NumPy is imported.

One timing mechanism, ``harness.time_blocks``, serves every row. The libraries of a row are
timed in alternating blocks: each round runs, for each library in turn, warm-up call(s) and
then a few timed calls (``time.perf_counter``) and keeps the block's median; R rounds are run,
the library order rotating from round to round. A row reports each library's median over the
rounds and the ratio reference / rconv (> 1: rconv faster) as the median of the per-round
ratios, with its min-max spread. Blocks, not single calls, alternate: torch's OpenMP threads
and OpenBLAS's threads keep spinning after a call and would land in the next library's
timing; timing one library entirely after the other would expose the ratio to drift.

Every library runs on the same thread count (``--threads``, default 2): OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS are set before NumPy is imported (threadpoolctl enforces
and records the BLAS/OpenMP pools), then ``torch.set_num_threads``, ``cv2.setNumThreads`` and
``rconv.set_num_threads``. Machines are shared and noisy: compare ratios, not times.
"""
