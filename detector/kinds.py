"""The names of every detector kind, in one place and without importing torch (the CLI's choices).

Learned kinds are reconstruction models (`models/`); references are the non-learned nearest
neighbours (`nearest.py`) that every accuracy table carries beside them.
"""

LEARNED_KINDS = ("full", "paper", "vswin", "memae", "conae")
REFERENCE_KINDS = ("frame-nn", "clip-nn", "phase-nn")
KINDS = LEARNED_KINDS + REFERENCE_KINDS
