"""CYGNO / IDAO 2021: ER vs NR recoils and their energy from 576x576 camera images.

Readers (``names``, ``dataset``, ``images``, ``cache``, ``data``), simulator
and calibration (``simulate``, ``calibrate``), what the two models learn
(``objectives``, ``models``), post-processing and metrics (``postprocess``,
``metrics``), figures (``plots``) and the three jobs (``train``, ``submit``,
``report``) wired up in ``task``.
"""
