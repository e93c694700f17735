"""Fakes of external systems for tests: real HTTP servers, no mocks of our own code."""
