"""A whole detector in one page: the proof that adding one to idao needs only what differs (tests/core/test_toy_detector.py)."""
