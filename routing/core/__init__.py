"""The proxy's pure core: typed values, provider adapters and routing decisions.

No Django, Celery or other app imports here (tests/routing/core/test_architecture.py checks):
the core is plain async Python around one shared httpx client.
"""
