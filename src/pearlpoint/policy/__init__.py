"""The CSA policy: risk taxonomy (9 groups, 32 categories + ``none``), severities and guidelines.

>>> from pearlpoint.policy import get_policy
>>> get_policy().find("Cybersecurity").severity
3
"""

from pearlpoint.policy.loader import get_policy, load_policy, merge_policy_data
from pearlpoint.policy.model import Category, Group, Guideline, LocalizedGuideline, LocalizedText, Policy

__all__ = ["Category", "Group", "Guideline", "LocalizedGuideline", "LocalizedText", "Policy", "get_policy",
           "load_policy", "merge_policy_data"]
