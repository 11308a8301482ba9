"""DAMIC-M skipper-CCD tracks: classify (electron / muon / alpha / noise) and locate each track.

Everything that is specific to this task lives here: the readers (``io``), the
model's head with its preprocessing (``head``), the simulator (``simulate``),
metrics and plots (``metrics``, ``plots``) and the three jobs (``task``). The
engine, checkpoints, config and command line are the IDAO ones.
"""
