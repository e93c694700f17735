"""DSP analytics reports: fetch or pick up report ZIPs, archive them, load the raw tables."""
