"""Guardrails without Django: PII detection and masking, prompt-injection scoring, output rules,
structured-output validation and the stream filter that applies them to SSE events.

Nothing here imports Django or another app (tests/guardrails/test_core_boundary.py).
"""
