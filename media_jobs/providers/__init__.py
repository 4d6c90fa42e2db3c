"""Media adapters: one module per vendor wire format, all HTTP through media_jobs.providers.http."""
