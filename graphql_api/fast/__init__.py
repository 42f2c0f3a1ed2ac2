"""The fast path: a validated query whose selection the compiler understands becomes one SQL
statement that builds the whole `data` object in PostgreSQL; its JSON is passed through to the
response unparsed. Anything else runs through the resolvers. Both paths must answer the same,
which tests/test_fast_path.py checks on a corpus of operations."""


class Unsupported(Exception):
    """The operation uses something the fast path does not compile: the resolvers answer it."""
