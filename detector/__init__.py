"""The real-time loop: frames -> faces -> mask probabilities -> drawing -> sink."""
