"""A GraphQL API server for team task tracking, on PostgreSQL."""
