"""DAMIC-M skipper-CCD tracks: classify (electron / muon / alpha / noise) and locate each track.

Readers (``io``), what the model learns with its preprocessing
(``objective``), the network (``models``), the simulator (``simulate``),
metrics and figures (``metrics``, ``plots``) and the three jobs (``task``).
It uses the core only (engine, checkpoints, config, reporting), never CYGNO.
"""
