"""Spotify plays: polls of recently-played, the privacy export's history, metadata."""
