"""The GPU cluster replay suite on Alibaba's openb trace (see data.py and README.md)."""
