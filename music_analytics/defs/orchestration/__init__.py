"""Jobs, schedules and sensors that span domains."""
