"""Custom search attributes: what operators filter on in the Temporal UI. Never PII."""

from temporalio.common import SearchAttributeKey

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CLIENT_TYPE = SearchAttributeKey.for_keyword("ClientType")
CLIENT_TIER = SearchAttributeKey.for_keyword("ClientTier")
SLA_STATE = SearchAttributeKey.for_keyword("SlaState")
CASE_REF = SearchAttributeKey.for_keyword("CaseRef")
CASE_TYPE = SearchAttributeKey.for_keyword("CaseType")

ALL = (CASE_STAGE, CASE_STATUS, CLIENT_TYPE, CLIENT_TIER, SLA_STATE, CASE_REF, CASE_TYPE)
