"""Evaluation tools (benchmark, detection on videos): not imported by the runtime."""
