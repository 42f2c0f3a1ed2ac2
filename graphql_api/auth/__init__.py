"""Accounts: passwords, tokens, the viewer."""
