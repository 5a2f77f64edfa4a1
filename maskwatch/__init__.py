"""maskwatch: shared configuration, errors and file helpers for the detector, trainer and tools."""
