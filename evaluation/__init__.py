"""Evaluations of the whole pipeline on labelled photos (never imported by the runtime)."""
