"""HTTP constants shared by every router."""

API_PREFIX = "/api/v1"
