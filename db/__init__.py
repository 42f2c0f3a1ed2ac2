"""The data layer: models, engine, embedded PostgreSQL, repositories. Knows nothing of GraphQL."""
