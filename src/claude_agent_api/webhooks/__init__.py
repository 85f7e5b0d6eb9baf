"""Webhook delivery: the SSRF guard (:mod:`.ssrf`), Standard Webhooks signing (:mod:`.signing`) and delivery
with retries and a fail-closed result (:mod:`.delivery`)."""
