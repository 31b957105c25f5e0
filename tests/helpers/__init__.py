"""Shared builders for tests: tiny tokenizers and processors made locally, never downloaded."""
