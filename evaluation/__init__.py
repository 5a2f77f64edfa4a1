"""Evaluation of the product on labelled sets (never imported by the runtime): ``python -m evaluation.faces``."""
