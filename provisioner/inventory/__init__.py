"""
Inventory: what an org holds (``export``) and taking a run back out of it (``rollback``).
"""
