"""The bottom layer: atomic file writes, figures, argument checks. Imports nothing of the package."""
