"""idao: train, submit and report on particle-detector images (IDAO 2021 CYGNO first)."""

__version__ = "0.1.0"
