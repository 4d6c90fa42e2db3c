"""Dashboard pages of this app (mounted at the site root by gpuniq_site.urls)."""

page_patterns: list = []
