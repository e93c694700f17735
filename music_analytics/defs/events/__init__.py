"""Assets, checks and sensors for NDJSON stream-event files."""
