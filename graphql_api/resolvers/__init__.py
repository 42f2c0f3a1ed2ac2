"""Thin resolvers: parse input, call repositories, shape payloads."""
