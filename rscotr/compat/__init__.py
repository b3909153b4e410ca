"""Workarounds for mmcv 1.x on current torch, kept in this one folder.

Each module replaces a piece of mmcv 1.7 that breaks with current torch:

* :mod:`.parallel`: mmcv's ``MMDataParallel`` / ``MMDistributedDataParallel``
  move batches with mmcv's ``scatter``, which hands an int device to torch's
  ``_get_stream`` (current torch wants a ``torch.device``: the first CUDA step
  fails), and its DDP wrapper reads DDP internals that current torch removed.
  Here one function moves a batch to any device and the wrappers run through
  torch's own ``DistributedDataParallel.forward``.
* :mod:`.mmcv_ops`: ``mmcv.ops.get_compiling_cuda_version()`` kills the
  process on a CUDA build of mmcv-full 1.7.2 with torch >= 2.10. What mmcv
  was built with is read from its extension file instead, and whether its
  CUDA deformable-attention kernel works is found by running it once per GPU
  (the probe behind :func:`rscotr.ops.multi_scale_deformable_attn`).
* :mod:`.collect_env`: the environment report, instead of
  ``mmcv.utils.collect_env`` (which makes that call).

Moving to mmengine / mmcv 2.x deletes this folder: its wrappers, environment
report and ops work on current torch, and the callers import those instead.
"""
