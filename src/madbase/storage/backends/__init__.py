"""Where object bytes live: a small Protocol with filesystem, S3-compatible and in-memory implementations."""
