"""Follow a RemediationTicket: the failure's GitHub issue (one per failure, shared by the Rollouts it affects),
the coding agent, the fix pull requests, and the verification of the fixed revision."""

from selfheal.services.remediation.reconcile import reconcile_ticket
from selfheal.services.remediation.verification import record_failure

__all__ = ["reconcile_ticket", "record_failure"]
